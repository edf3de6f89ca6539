"""Who is asking: the hub identity's name mapped to the enclave account (role, memberships)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.errors import PermissionDenied
from hub.models import Account, AccountStatus, Membership, Project

from .permissions import Person


def person_for(session: Session, username: str) -> Person:
    account = session.execute(select(Account).where(Account.username == username)).scalar_one_or_none()
    if account is None:
        raise PermissionDenied(f"'{username}' has no enclave account; ask an administrator",
                               reason="no_account")
    if account.status != AccountStatus.active:
        raise PermissionDenied(f"the account '{username}' is {account.status.value}", reason="inactive")
    slugs = session.execute(
        select(Project.slug).join(Membership, Membership.project_id == Project.id)
        .where(Membership.account_id == account.id)
    ).scalars()
    return Person(username=account.username, role=account.role, projects=frozenset(slugs))
