"""Accounts in a known state, reached through the real service calls (accounts.add, enrolment).

    user = enrolled_user(settings, "ann")             # active, password + TOTP + 10 recovery codes
    totp_code(user.totp_secret)                        # the code an app would show now
    totp_code(user.totp_secret, offset_steps=1)        # next step's code (still accepted: window 1)

Enrolment uses the *previous* step's code, so the current and the next step are both still free for
logins right after (each step is accepted once per account).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field

import pyotp

from enclave import accounts, db
from enclave.errors import Invalid
from enclave.models import Role

from hub.auth import enrolment


@dataclass
class EnrolledUser:
    username: str
    password: str
    totp_secret: str
    recovery_codes: list[str] = field(default_factory=list)
    role: str = "researcher"


def totp_code(secret: str, offset_steps: int = 0) -> str:
    return pyotp.TOTP(secret).at(time.time() + 30 * offset_steps)


def pending_user(settings, username: str, role: str = "researcher") -> str:
    """Create an account that has not enrolled yet; returns its enrolment token."""
    with db.transaction(settings.database_url) as session:
        _, token = accounts.add(session, "test", username, Role(role), settings.auth.enrolment_valid_hours)
    return token


def enrol(settings, token: str, password: str | None = None) -> EnrolledUser:
    """Complete enrolment for `token` the way the enrolment page does."""
    with db.transaction(settings.database_url) as session:
        view = enrolment.start(session, settings, token)
    password = password or "pw-" + secrets.token_urlsafe(12)
    for attempt in range(2):  # a time step may turn between making the code and checking it
        try:
            with db.transaction(settings.database_url) as session:
                codes = enrolment.complete(
                    session, settings, token, password=password, password_confirm=password,
                    otp=totp_code(view.secret, offset_steps=-1),
                )
                role = accounts.get(session, view.username).role.value
            break
        except Invalid as exc:
            if exc.reason != "bad_otp" or attempt:
                raise
    return EnrolledUser(view.username, password, view.secret, codes, role)


def enrolled_user(settings, username: str, role: str = "researcher", password: str | None = None) -> EnrolledUser:
    return enrol(settings, pending_user(settings, username, role), password)
