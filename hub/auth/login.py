"""The login decision, as plain functions over the enclave database.

`password_login` is the local path (user name + password + code); `second_factor` is the step shared
with institutional SSO (the IdP did the first factor). Every attempt ends in exactly one audit event:
`login.ok`, or `login.failed` with a reason code, plus `login.recovery_code_used` when a recovery code
let someone in. Failures count per account (lockout after `auth.lockout_threshold`, stored in the
database so a restart does not lift it) and per source address (`LoginThrottle`).

Refusals are `LoginRefused` with a message a person can act on. Wrong user name, wrong password and
wrong code all get the same message, and an unknown user costs the same hashing work as a known one,
so neither the page nor its timing tells whether a name exists. A missing code is refused before the
password is looked at, so "enter your code" says nothing about the password either.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from enclave import audit, clock, db, permissions, secrets_store
from enclave.errors import EnclaveError
from enclave.models import Account, AccountStatus, LoginThrottle
from enclave.permissions import AccountState

from hub.auth import mfa, passwords

GENERIC = "Wrong user name, password or code."

# Reasons that count as a guess: against the account (lockout) and the source address (throttle).
_ACCOUNT_FAILURES = {"bad_password", "bad_otp", "replayed_otp"}
_SOURCE_FAILURES = {"unknown_user", "bad_password", "bad_otp", "replayed_otp", "pending", "disabled"}


class LoginRefused(EnclaveError):
    """A refused login; `str()` is safe to show on the login page, `.reason` is the audit code."""

    reason = "refused"
    status = 403
    locked_account: str | None = None  # set when this refusal locked the account (its sessions must end)


_SQLITE_LOCK = threading.Lock()


@contextlib.contextmanager
def write_transaction(url: str) -> Iterator[Session]:
    """A transaction that will write. On SQLite, writers in this process take turns (a read snapshot
    upgraded to a write would otherwise fail with "database is locked" under concurrent logins)."""
    lock = _SQLITE_LOCK if url.startswith("sqlite") else contextlib.nullcontext()
    with lock, db.transaction(url) as session:
        yield session


def record_event(url: str, actor: str, action: str, target: str, detail: dict) -> None:
    """One audit event in a write transaction of its own (for hub handlers, through db.off_loop)."""
    with write_transaction(url) as session:
        audit.record(session, actor, action, target, detail)


_KEYRINGS: dict[tuple[str, int], object] = {}


def _keyring(state_dir):
    """The MFA keyring, re-read only when mfa.keys changes (e.g. after `enclave mfa rotate-key`)."""
    path = secrets_store.secrets_dir(state_dir) / "mfa.keys"
    try:
        key = (str(path), path.stat().st_mtime_ns)
    except FileNotFoundError:
        return secrets_store.mfa_keyring(state_dir)
    ring = _KEYRINGS.get(key)
    if ring is None:
        _KEYRINGS.clear()
        ring = _KEYRINGS[key] = secrets_store.mfa_keyring(state_dir)
    return ring


@dataclass(frozen=True)
class LoggedIn:
    username: str
    role: str


def _hhmm(when: dt.datetime) -> str:
    return when.strftime("%H:%M")


def _locked_message(settings, until: dt.datetime) -> str:
    return (f"Account locked after {settings.auth.lockout_threshold} failed attempts; try again after "
            f"{_hhmm(until)} UTC or ask an administrator.")


def _throttled_message(until: dt.datetime, now: dt.datetime) -> str:
    minutes = max(1, int((until - now).total_seconds() + 59) // 60)
    return f"Too many failed attempts from your address; wait {minutes} minute{'s' if minutes != 1 else ''}."


# -- per-source throttle --------------------------------------------------------------------------

def _throttle_row(session: Session, source: str) -> LoginThrottle | None:
    return session.get(LoginThrottle, (source or "unknown")[:64], with_for_update=True)


def source_blocked_until(session: Session, source: str, now: dt.datetime) -> dt.datetime | None:
    row = session.get(LoginThrottle, (source or "unknown")[:64])
    if row is not None and row.blocked_until is not None and row.blocked_until > now:
        return row.blocked_until
    return None


def _count_source_failure(session: Session, settings, source: str, now: dt.datetime) -> None:
    key = (source or "unknown")[:64]
    row = _throttle_row(session, key)
    window = dt.timedelta(minutes=settings.auth.ip_window_minutes)
    if row is None:
        try:
            with session.begin_nested():  # two first failures from one address may race (PostgreSQL)
                row = LoginThrottle(source=key, failures=0, window_start=now)
                session.add(row)
        except IntegrityError:
            row = _throttle_row(session, key)
    if now - row.window_start > window:
        row.failures, row.window_start = 0, now
    row.failures += 1
    if row.failures >= settings.auth.ip_max_failures:
        row.blocked_until = now + window
        row.failures, row.window_start = 0, now


# -- recording outcomes ---------------------------------------------------------------------------

def _refuse(session: Session, settings, *, username: str, account: Account | None, source: str,
            reason: str, message: str, now: dt.datetime, extra: dict | None = None) -> LoginRefused:
    """Count and audit a failure in `session`; return the exception for the caller to raise."""
    detail = {"reason": reason, "source": source, **(extra or {})}
    locked = None
    if account is not None and reason in _ACCOUNT_FAILURES:
        account.failed_logins = (account.failed_logins or 0) + 1
        if account.failed_logins >= settings.auth.lockout_threshold:
            account.locked_until = now + dt.timedelta(minutes=settings.auth.lockout_minutes)
            account.failed_logins = 0
            detail["locked_until"] = account.locked_until.isoformat(timespec="seconds")
            locked = account.username
    if reason in _SOURCE_FAILURES:
        _count_source_failure(session, settings, source, now)
    audit.record(session, username[:64] or "?", "login.failed", username[:255], detail)
    refusal = LoginRefused(message, reason=reason, detail=f"{username!r} from {source}: {reason}")
    refusal.locked_account = locked
    return refusal


def _succeed(session: Session, account: Account, source: str, method: str) -> LoggedIn:
    account.failed_logins = 0
    account.locked_until = None
    audit.record(session, account.username, "login.ok", account.username, {"source": source, "method": method})
    return LoggedIn(account.username, account.role.value)


def _check_code(session: Session, settings, account: Account, code: str, source: str,
                now: dt.datetime) -> tuple[LoginRefused | None, str]:
    """TOTP or recovery code for an account whose first factor passed. Returns (refusal, method)."""
    keyring = _keyring(settings.state_dir)
    if mfa.looks_like_recovery_code(code):
        if mfa.use_recovery_code(account, code):
            audit.record(session, account.username, "login.recovery_code_used", account.username,
                         {"source": source, "left": mfa.unused_recovery_codes(account)})
            return None, "recovery_code"
        return _refuse(session, settings, username=account.username, account=account, source=source,
                       reason="bad_otp", message=GENERIC, now=now), ""
    result = mfa.check_totp(account, code, keyring, now)
    if result is mfa.CodeCheck.ok:
        return None, "totp"
    if result is mfa.CodeCheck.replayed:
        return _refuse(session, settings, username=account.username, account=account, source=source,
                       reason="replayed_otp", message="That code was already used; wait for the next one.",
                       now=now), ""
    return _refuse(session, settings, username=account.username, account=account, source=source,
                   reason="bad_otp", message=GENERIC, now=now), ""


def _gate(session: Session, settings, account: Account | None, username: str, code: str, source: str,
          now: dt.datetime) -> LoginRefused | None:
    """Refusals decided before any secret is checked: throttled source, missing code, locked account."""
    blocked = source_blocked_until(session, source, now)
    if blocked:
        return _refuse(session, settings, username=username, account=account, source=source,
                       reason="throttled_ip", message=_throttled_message(blocked, now), now=now)
    if not (code or "").strip():
        return _refuse(session, settings, username=username, account=account, source=source,
                       reason="missing_otp", message="Enter the 6-digit code from your authenticator app.",
                       now=now)
    if account is not None and account.locked_until is not None and account.locked_until > now:
        return _refuse(session, settings, username=username, account=account, source=source,
                       reason="locked", message=_locked_message(settings, account.locked_until), now=now)
    return None


def _status_refusal(session, settings, account: Account, source: str, now) -> LoginRefused | None:
    state = permissions.account_state(account)
    if state is AccountState.disabled:
        return _refuse(session, settings, username=account.username, account=account, source=source,
                       reason="disabled", message="This account is disabled; ask an administrator.", now=now)
    if state is not AccountState.active:
        return _refuse(session, settings, username=account.username, account=account, source=source,
                       reason="pending", now=now,
                       message="This account has not been enrolled yet: open the enrolment link you were "
                               "given, or ask an administrator for a new one.")
    return None


# -- public ---------------------------------------------------------------------------------------

def _find(session: Session, username: str, lock: bool = False) -> Account | None:
    q = select(Account).where(Account.username == username)
    if lock:
        q = q.with_for_update()
    return session.execute(q).scalar_one_or_none()


def second_factor(session: Session, settings, account: Account, code: str, source: str) -> None:
    """The enclave's second factor for an account whose first factor already passed (e.g. SSO).

    Checks throttle, lock, status, then the TOTP or recovery code. On success the account's counters
    are updated in `session` (the caller commits, with its own `login.ok` audit if it wants one). On
    refusal the failure (counters + `login.failed` audit) is committed here before `LoginRefused` is
    raised, so a caller's rollback cannot erase it.
    """
    now = clock.now()
    refusal = _gate(session, settings, account, account.username, code, source, now)
    if refusal is None:
        refusal = _status_refusal(session, settings, account, source, now)
    if refusal is None:
        refusal, _method = _check_code(session, settings, account, code, source, now)
    if refusal is not None:
        session.commit()
        raise refusal


def password_login(settings, username: str, password: str, code: str, source: str) -> LoggedIn:
    """Local login: user name + password + TOTP/recovery code. Blocking (hashing): run it in a thread."""
    username = (username or "").strip().lower()[:64]
    url = settings.database_url
    now = clock.now()
    # 1. read-only look: is anything refused before secrets are checked?
    with db.transaction(url) as session:
        account = _find(session, username)
        early = _gate_preview(session, account, code, source, now)
        stored_hash = account.password_hash if account is not None else None
    # 2. the expensive part, outside any transaction
    password_ok = False if early else passwords.verify_password(settings, stored_hash, password)
    # 3. decide and record, in one short write transaction
    with write_transaction(url) as session:
        account = _find(session, username, lock=True)
        refusal = _gate(session, settings, account, username, code, source, now)
        if refusal is None and account is None:
            refusal = _refuse(session, settings, username=username, account=None, source=source,
                              reason="unknown_user", message=GENERIC, now=now)
        if refusal is None and account.status == AccountStatus.pending and account.password_hash is None:
            refusal = _status_refusal(session, settings, account, source, now)  # nothing to guess yet
        if refusal is None and not (password_ok and account.password_hash == stored_hash):
            refusal = _refuse(session, settings, username=username, account=account, source=source,
                              reason="bad_password", message=GENERIC, now=now)
        if refusal is None:
            refusal = _status_refusal(session, settings, account, source, now)
        method = ""
        if refusal is None:
            refusal, method = _check_code(session, settings, account, code, source, now)
        result = None if refusal else _succeed(session, account, source, method)
    if refusal is not None:
        raise refusal
    if passwords.needs_rehash(settings, stored_hash):
        _rehash(settings, username, stored_hash, password)
    return result


def _rehash(settings, username: str, old_hash: str, password: str) -> None:
    """After the operator raised the KDF cost, upgrade a hash at the next successful login."""
    new_hash = passwords.hash_password(settings, password)
    with write_transaction(settings.database_url) as session:
        account = _find(session, username, lock=True)
        if account is not None and account.password_hash == old_hash:
            account.password_hash = new_hash
            audit.record(session, username, "user.password_rehash", username,
                         {"memory_kib": settings.auth.argon2_memory_kib, "time_cost": settings.auth.argon2_time_cost})


def _gate_preview(session: Session, account: Account | None, code: str, source: str, now) -> bool:
    """True if _gate would refuse (read-only, so the hash is skipped for refused attempts)."""
    if source_blocked_until(session, source, now) or not (code or "").strip():
        return True
    return bool(account is not None and account.locked_until is not None and account.locked_until > now)
