"""Who may do what: pure functions over accounts and projects, no I/O. Each rule is written here once.

- `account_state` is the one answer to "may this account act at all?" (password login, OIDC, session
  re-checks, spawns and the review service all ask it); `project_state` the one answer to "is this
  project open?" (spawns, running servers, submissions, imports). Callers word their own refusal
  from the state, but never decide it themselves.

`check_*` raise `PermissionDenied` with a message meant for the person refused (what was refused, why,
and who can change it); `can_*` answer the same question as a bool. Everything ends in an explicit
deny: a spawn is allowed only when every condition has been checked.
"""

from __future__ import annotations

import datetime as dt
from enum import Enum

from enclave.errors import PermissionDenied
from enclave.models import Account, AccountStatus, Project, ProjectStatus


class AccountState(str, Enum):
    active = "active"
    unknown = "unknown"  # no such account
    disabled = "disabled"
    not_enrolled = "not_enrolled"  # enrolment not finished: no TOTP secret or no enrolment date


def account_state(account: Account | None) -> AccountState:
    """May this account act at all? Only an existing, active, fully enrolled account may (explicit deny)."""
    if account is None:
        return AccountState.unknown
    if account.status == AccountStatus.disabled:
        return AccountState.disabled
    if account.status == AccountStatus.active and account.totp_secret is not None and account.enrolled_at is not None:
        return AccountState.active
    return AccountState.not_enrolled


def may_act(account: Account | None) -> bool:
    return account_state(account) is AccountState.active


def check_may_act(account: Account | None) -> None:
    """Refuse anything at all to an account that may not act, with a message for its person."""
    state = account_state(account)
    if state is AccountState.unknown:
        raise PermissionDenied(
            "Your account is not registered in the enclave; ask an administrator to create it.",
            reason="unknown_account",
        )
    if state is AccountState.disabled:
        raise PermissionDenied(
            "Your account is disabled, so no notebook can be started; ask an administrator to re-enable it.",
            reason="account_disabled",
        )
    if state is not AccountState.active:
        raise PermissionDenied(
            "Your account has not finished enrolment; use your enrolment link first.",
            reason="account_not_active",
        )


class ProjectState(str, Enum):
    open = "open"
    suspended = "suspended"
    closed = "closed"
    inactive = "inactive"  # any status added later
    not_started = "not started"
    expired = "past its end date"


def project_state(project: Project, today: dt.date) -> ProjectState:
    """Is this project open on `today`? Active, started and not past its end date (explicit deny)."""
    if project.status == ProjectStatus.suspended:
        return ProjectState.suspended
    if project.status == ProjectStatus.closed:
        return ProjectState.closed
    if project.status != ProjectStatus.active:
        return ProjectState.inactive
    if today < project.start_date:
        return ProjectState.not_started
    if project.end_date is not None and today > project.end_date:
        return ProjectState.expired
    return ProjectState.open


def project_open(project: Project, today: dt.date) -> bool:
    return project_state(project, today) is ProjectState.open


def check_project_open(project: Project, today: dt.date) -> None:
    """Refuse work in a project that is not open, saying why and who can change it."""
    state = project_state(project, today)
    if state is ProjectState.suspended:
        raise PermissionDenied(
            f"Project '{project.slug}' is suspended: notebooks cannot be started until an "
            "administrator reactivates it.",
            reason="project_suspended",
        )
    if state is ProjectState.closed:
        raise PermissionDenied(
            f"Project '{project.slug}' is closed: its data can no longer be used.",
            reason="project_closed",
        )
    if state is ProjectState.not_started:
        raise PermissionDenied(
            f"Project '{project.slug}' starts on {project.start_date.isoformat()}; "
            "notebooks can be started from that day.",
            reason="project_not_started",
        )
    if state is ProjectState.expired:
        raise PermissionDenied(
            f"Project '{project.slug}' ended on {project.end_date.isoformat()}; ask an "
            "administrator to extend it if you still need access.",
            reason="project_expired",
        )
    if state is not ProjectState.open:  # explicit deny for any state added later
        raise PermissionDenied(f"Project '{project.slug}' is not active.", reason="project_inactive")


def check_can_spawn(account: Account | None, project: Project | None, today: dt.date) -> None:
    """Refuse to start a notebook server for `account` in `project` unless every rule allows it."""
    check_may_act(account)
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
    check_project_open(project, today)


def can_spawn(account: Account | None, project: Project | None, today: dt.date) -> bool:
    try:
        check_can_spawn(account, project, today)
    except PermissionDenied:
        return False
    return True
