"""Who is asking: the hub identity's name mapped to the enclave account (role, memberships)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from enclave import permissions
from enclave.errors import PermissionDenied
from enclave.models import Account, Membership, Project
from enclave.permissions import AccountState

from egress_review.permissions import Person


def person_for(session: Session, username: str) -> Person:
    account = session.execute(select(Account).where(Account.username == username)).scalar_one_or_none()
    state = permissions.account_state(account)
    if state is AccountState.unknown:
        raise PermissionDenied(f"'{username}' has no enclave account; ask an administrator",
                               reason="no_account")
    if state is not AccountState.active:
        raise PermissionDenied(f"the account '{username}' is {state.value.replace('_', ' ')}", reason="inactive")
    slugs = session.execute(
        select(Project.slug).join(Membership, Membership.project_id == Project.id)
        .where(Membership.account_id == account.id)
    ).scalars()
    return Person(username=account.username, role=account.role, projects=frozenset(slugs))
