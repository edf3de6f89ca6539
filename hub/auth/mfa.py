"""TOTP seeds (encrypted at rest) and recovery codes (hashed, single use).

Seeds are Fernet tokens made with the first key of `secrets_store.mfa_keyring` and readable with any
of its keys, so the key can be rotated (`enclave mfa rotate-key`). A TOTP time step is accepted at most
once per account: the accepted step is stored in `Account.totp_last_counter` and any code for that step
or an earlier one is refused as a replay. Recovery codes are high-entropy random strings stored as
sha256 hashes and compared in constant time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from enum import Enum

import pyotp
from cryptography.fernet import MultiFernet
from sqlalchemy.orm import Session

from enclave import clock
from enclave.models import Account, RecoveryCode

STEP_SECONDS = 30
VALID_WINDOW = 1  # accept the previous and next step too (clock drift)
RECOVERY_CODES = 10
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i


def new_secret() -> str:
    """A fresh base32 TOTP seed (160 bits)."""
    return pyotp.random_base32(32)


def encrypt(keyring: MultiFernet, secret: str) -> bytes:
    return keyring.encrypt(secret.encode())


def decrypt(keyring: MultiFernet, token: bytes) -> str:
    return keyring.decrypt(bytes(token)).decode()


def provisioning_uri(secret: str, username: str, issuer: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=issuer)


def _counter(when: dt.datetime) -> int:
    return int(when.replace(tzinfo=dt.UTC).timestamp()) // STEP_SECONDS


class CodeCheck(str, Enum):
    ok = "ok"
    wrong = "wrong"
    replayed = "replayed"


def check_totp(account: Account, code: str, keyring: MultiFernet, now: dt.datetime | None = None) -> CodeCheck:
    """Check `code` against the account's seed; on success remember its time step (caller commits)."""
    code = (code or "").strip().replace(" ", "")
    if account.totp_secret is None or not (code.isdigit() and len(code) == 6):
        return CodeCheck.wrong
    totp = pyotp.TOTP(decrypt(keyring, account.totp_secret))
    current = _counter(now or clock.now())
    matched = None
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            matched = step
    if matched is None:
        return CodeCheck.wrong
    if matched <= (account.totp_last_counter or 0):
        return CodeCheck.replayed
    account.totp_last_counter = matched
    return CodeCheck.ok


def verify_totp(account: Account, code: str, keyring: MultiFernet, now: dt.datetime | None = None) -> bool:
    """True once per time step for a right code (see check_totp for why it was refused)."""
    return check_totp(account, code, keyring, now) is CodeCheck.ok


# -- recovery codes -------------------------------------------------------------------------------

def _normalise(code: str) -> str:
    return "".join(ch for ch in (code or "").lower() if ch.isalnum())


def _hash_code(code: str) -> str:
    return hashlib.sha256(_normalise(code).encode()).hexdigest()


def _new_code() -> str:
    raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10))  # ~49 bits
    return f"{raw[:5]}-{raw[5:]}"


def looks_like_recovery_code(code: str) -> bool:
    return len(_normalise(code)) == 10


def new_recovery_codes(session: Session, account: Account) -> list[str]:
    """Replace the account's recovery codes with 10 new ones; returns them (shown once, never stored)."""
    for old in list(account.recovery_codes):
        account.recovery_codes.remove(old)
    session.flush()
    codes = [_new_code() for _ in range(RECOVERY_CODES)]
    for code in codes:
        account.recovery_codes.append(RecoveryCode(code_hash=_hash_code(code)))
    session.flush()
    return codes


def use_recovery_code(account: Account, code: str) -> bool:
    """Mark the matching unused code used; every stored hash is compared so timing says nothing."""
    digest = _hash_code(code)
    found = None
    for rc in account.recovery_codes:
        if hmac.compare_digest(rc.code_hash, digest) and rc.used_at is None:
            found = rc
    if found is None:
        return False
    found.used_at = clock.now()
    return True


def unused_recovery_codes(account: Account) -> int:
    return sum(1 for rc in account.recovery_codes if rc.used_at is None)


def rotate_key(session: Session, state_dir, keyring_loader) -> int:
    """Re-encrypt every seed with the (already rotated) newest key; returns how many."""
    from sqlalchemy import select

    keyring = keyring_loader(state_dir)
    n = 0
    for account in session.execute(select(Account).where(Account.totp_secret.is_not(None))).scalars():
        account.totp_secret = keyring.rotate(bytes(account.totp_secret))
        n += 1
    return n
