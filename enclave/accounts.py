"""Account lifecycle: creation with a one-time enrolment link, listing, disabling.

Enrolment completion, MFA reset and login checks live in hub.auth.enrolment / hub.auth.login; every change
here is audited in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from enclave import audit, clock, permissions
from enclave.errors import Conflict, Invalid, NotFound
from enclave.models import Account, AccountStatus, EnrolmentToken, Role

USERNAME_RE = re.compile(r"^[a-z][a-z0-9_-]{1,31}$")


def token_hash(token: str) -> str:
    """Enrolment tokens are stored hashed: a database leak gives no usable link."""
    return hashlib.sha256(token.encode()).hexdigest()


def get(session: Session, username: str) -> Account:
    account = session.execute(select(Account).where(Account.username == username)).scalar_one_or_none()
    if account is None:
        raise NotFound(f"no user '{username}' (see `enclave user list`)")
    return account


def parse_role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise Invalid(f"unknown role '{value}'; choose one of: {', '.join(r.value for r in Role)}") from None


def issue_enrolment(session: Session, account: Account, valid_hours: float) -> str:
    """A fresh one-time token (older unused ones stop working); returns the token itself."""
    now = clock.now()
    for old in session.execute(
        select(EnrolmentToken).where(EnrolmentToken.account_id == account.id, EnrolmentToken.used_at.is_(None))
    ).scalars():
        old.used_at = now
    token = secrets.token_urlsafe(32)
    session.add(EnrolmentToken(
        account_id=account.id, token_hash=token_hash(token),
        expires_at=now + dt.timedelta(hours=valid_hours),
    ))
    return token


def enrolment_url(settings, token: str) -> str:
    """The one-time link a person enrols with (shown once, by the command or the admin page)."""
    return f"{settings.public_url}/hub/enrol/{token}"


def add(session: Session, actor: str, username: str, role: Role, valid_hours: float) -> tuple[Account, str]:
    """New pending account and its enrolment token."""
    if not USERNAME_RE.match(username):
        raise Invalid(
            f"user name '{username}' is not allowed: use 2-32 lowercase letters, digits, '_' or '-', "
            "starting with a letter"
        )
    if session.execute(select(Account.id).where(Account.username == username)).first():
        raise Conflict(f"user '{username}' already exists")
    account = Account(username=username, role=role, status=AccountStatus.pending,
                      totp_last_counter=0, failed_logins=0)
    session.add(account)
    session.flush()
    token = issue_enrolment(session, account, valid_hours)
    audit.record(session, actor, "user.add", username, {"role": role.value})
    return account, token


def may_act(session: Session, username: str) -> bool:
    """Whether `username` names an account that may act at all (enclave.permissions.account_state)."""
    account = session.execute(select(Account).where(Account.username == username)).scalar_one_or_none()
    return permissions.may_act(account)


def reset_mfa(session: Session, actor: str, username: str, valid_hours: float) -> str:
    """Forget seed, recovery codes, replay counter and lock; the account must enrol again. Returns the new
    link token (the row change; enclave.access.reset_mfa adds what must follow)."""
    account = get(session, username)
    if account.status == AccountStatus.disabled:
        raise Invalid(f"user '{username}' is disabled; a disabled account cannot enrol again")
    account.totp_secret = None
    account.totp_last_counter = 0
    account.recovery_codes.clear()
    account.status = AccountStatus.pending
    account.enrolled_at = None
    account.failed_logins = 0
    account.locked_until = None
    session.flush()
    token = issue_enrolment(session, account, valid_hours)
    audit.record(session, actor, "user.reset_mfa", username)
    return token


def list_all(session: Session) -> list[Account]:
    return list(session.execute(select(Account).order_by(Account.username)).scalars())


def disable(session: Session, actor: str, username: str) -> Account:
    account = get(session, username)
    if account.status == AccountStatus.disabled:
        raise Invalid(f"user '{username}' is already disabled")
    account.status = AccountStatus.disabled
    audit.record(session, actor, "user.disable", username)
    return account


def enable(session: Session, actor: str, username: str) -> Account:
    """Re-enable a disabled account: active again if it had enrolled, else pending (its link is gone:
    reset its MFA to give it a new one)."""
    account = get(session, username)
    if account.status != AccountStatus.disabled:
        raise Invalid(f"user '{username}' is not disabled")
    enrolled = bool(account.totp_secret and account.enrolled_at)
    account.status = AccountStatus.active if enrolled else AccountStatus.pending
    account.failed_logins, account.locked_until = 0, None
    audit.record(session, actor, "user.enable", username, {"status": account.status.value})
    return account


def set_role(session: Session, actor: str, username: str, role: Role) -> Account:
    """Change a person's role. Only researchers are project members, so a member must leave every
    project before becoming a steward or an admin."""
    account = get(session, username)
    if account.role == role:
        raise Invalid(f"'{username}' is already a {role.value}")
    if role != Role.researcher and account.memberships:
        slugs = ", ".join(sorted(m.project.slug for m in account.memberships))
        raise Invalid(f"'{username}' is a member of {slugs}; remove them from those projects before making "
                      f"them a {role.value} (only researchers are members)")
    old = account.role
    account.role = role
    audit.record(session, actor, "user.role", username, {"from": old.value, "to": role.value})
    return account
