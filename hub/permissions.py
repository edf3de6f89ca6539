"""Who may do what on the hub side: pure functions over accounts and projects, no I/O.

`check_*` raise `PermissionDenied` with a message meant for the person refused (what was refused, why,
and who can change it); `can_*` answer the same question as a bool. Everything ends in an explicit
deny: a spawn is allowed only when every condition has been checked.
"""

from __future__ import annotations

import datetime as dt

from .errors import PermissionDenied
from .models import Account, AccountStatus, Project, ProjectStatus


def check_can_spawn(account: Account | None, project: Project | None, today: dt.date) -> None:
    """Refuse to start a notebook server for `account` in `project` unless every rule allows it."""
    if account is None:
        raise PermissionDenied(
            "Your account is not registered in the enclave; ask an administrator to create it.",
            reason="unknown_account",
        )
    if account.status == AccountStatus.disabled:
        raise PermissionDenied(
            "Your account is disabled, so no notebook can be started; ask an administrator to re-enable it.",
            reason="account_disabled",
        )
    if account.status != AccountStatus.active:
        raise PermissionDenied(
            "Your account has not finished enrolment; use your enrolment link first.",
            reason="account_not_active",
        )
    if project is None:
        raise PermissionDenied(
            "There is no such project; pick one of your projects on the home page.",
            reason="no_project",
        )
    if not any(m.account_id == account.id for m in project.memberships):
        raise PermissionDenied(
            f"You are not a member of project '{project.slug}'; ask the project's data steward "
            "or an administrator to add you.",
            reason="not_member",
        )
    if project.status == ProjectStatus.suspended:
        raise PermissionDenied(
            f"Project '{project.slug}' is suspended: notebooks cannot be started until an "
            "administrator reactivates it.",
            reason="project_suspended",
        )
    if project.status == ProjectStatus.closed:
        raise PermissionDenied(
            f"Project '{project.slug}' is closed: its data can no longer be used.",
            reason="project_closed",
        )
    if project.status != ProjectStatus.active:  # explicit deny for any status added later
        raise PermissionDenied(f"Project '{project.slug}' is not active.", reason="project_inactive")
    if today < project.start_date:
        raise PermissionDenied(
            f"Project '{project.slug}' starts on {project.start_date.isoformat()}; "
            "notebooks can be started from that day.",
            reason="project_not_started",
        )
    if project.end_date is not None and today > project.end_date:
        raise PermissionDenied(
            f"Project '{project.slug}' ended on {project.end_date.isoformat()}; ask an "
            "administrator to extend it if you still need access.",
            reason="project_expired",
        )


def can_spawn(account: Account | None, project: Project | None, today: dt.date) -> bool:
    try:
        check_can_spawn(account, project, today)
    except PermissionDenied:
        return False
    return True
