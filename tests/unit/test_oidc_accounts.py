"""Which enclave accounts an IdP-authenticated person may use (hub.auth.oidc.admit / second_step), on the
real database (SQLite and PostgreSQL), with the audit events each decision writes."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import types

import pytest
from sqlalchemy import select

from enclave import accounts, clock, db
from enclave.errors import PermissionDenied
from enclave.models import Account, AuditEvent

from hub.auth import oidc, roles
from hub.auth.login import LoginRefused
from tests.conftest import BOTH
from tests.support.users import enrolled_user, pending_user, totp_code


def last_event(url: str, target: str) -> tuple[str, dict]:
    with db.transaction(url) as session:
        ev = session.execute(
            select(AuditEvent).where(AuditEvent.target == target).order_by(AuditEvent.seq.desc())
        ).scalars().first()
        return ev.action, json.loads(ev.detail)


@pytest.mark.parametrize("db_url", BOTH, indirect=True)
def test_active_account_is_admitted_and_the_idp_step_audited(enclave_env):
    s = enclave_env.settings
    enrolled_user(s, "ann", role="steward")
    d = oidc.admit(s, "ann", False, "10.0.0.1", "sub-1")
    assert (d.username, d.role, d.mfa_at_idp) == ("ann", "steward", False)
    assert last_event(s.database_url, "ann") == ("login.sso.idp_ok",
                                                 {"source": "10.0.0.1", "sub": "sub-1", "next": "totp"})
    d = oidc.admit(s, "ann", True, "10.0.0.1", "sub-1")
    assert last_event(s.database_url, "ann") == ("login.ok",
                                                 {"source": "10.0.0.1", "sub": "sub-1", "method": "sso+idp_mfa"})


def test_admin_role_is_a_group_not_a_hub_admin(enclave_env):
    enrolled_user(enclave_env.settings, "root-ann", role="admin")
    d = oidc.admit(enclave_env.settings, "root-ann", True, "", "s")
    assert d.role == "admin"
    assert roles.auth_model(d.username, d.role) == {"name": "root-ann", "admin": False, "groups": ["admin"]}


@pytest.mark.parametrize(
    "prepare, reason, words",
    [
        pytest.param(lambda s: None, "unknown_user", "has no account in this enclave", id="unknown"),
        pytest.param(lambda s: pending_user(s, "bob"), "pending", "not been enrolled", id="pending"),
        pytest.param("disable", "disabled", "disabled", id="disabled"),
        pytest.param("lock", "locked", "locked", id="locked"),
    ],
)
def test_refusals_say_why_and_are_audited(enclave_env, prepare, reason, words):
    s = enclave_env.settings
    if callable(prepare):
        prepare(s)
    else:
        enrolled_user(s, "bob")
        with db.transaction(s.database_url) as session:
            if prepare == "disable":
                accounts.disable(session, "test", "bob")
            else:
                account = accounts.get(session, "bob")
                account.locked_until = clock.now() + dt.timedelta(minutes=10)
    for mfa_at_idp in (False, True):
        with pytest.raises(PermissionDenied) as err:
            oidc.admit(s, "bob", mfa_at_idp, "10.0.0.2", "sub-bob")
        assert err.value.reason == reason and words in str(err.value)
        assert last_event(s.database_url, "bob") == ("login.failed", {
            "reason": reason, "method": "sso", "source": "10.0.0.2", "sub": "sub-bob"})


def test_second_step_checks_the_code_once(enclave_env):
    s = enclave_env.settings
    user = enrolled_user(s, "cat")
    code = totp_code(user.totp_secret)
    with pytest.raises(LoginRefused) as err:
        oidc.second_step(s, "cat", "", "10.0.0.3")
    assert err.value.reason == "missing_otp"
    oidc.second_step(s, "cat", code, "10.0.0.3")
    assert last_event(s.database_url, "cat") == ("login.ok", {"source": "10.0.0.3", "method": "sso+totp"})
    with pytest.raises(LoginRefused) as err:
        oidc.second_step(s, "cat", code, "10.0.0.3")
    assert err.value.reason == "replayed_otp"
    with db.transaction(s.database_url) as session:  # the failure was kept (committed by second_factor)
        assert session.execute(select(Account.failed_logins).where(Account.username == "cat")).scalar_one() == 1


def test_wrong_code_message_does_not_mention_a_password(enclave_env):
    enrolled_user(enclave_env.settings, "dan")
    with pytest.raises(LoginRefused) as err:
        oidc.second_step(enclave_env.settings, "dan", "12345678901", "10.0.0.4")  # neither TOTP nor recovery
    assert "password" not in str(err.value) and "code is not right" in str(err.value)


def test_hub_session_ends_when_the_account_is_disabled(enclave_env):
    s = enclave_env.settings
    enrolled_user(s, "eve")
    auth = oidc.EnclaveOIDCAuthenticator(enclave_settings=s, client_id="c", client_secret="x")
    user = types.SimpleNamespace(name="eve")
    assert asyncio.run(auth.refresh_user(user)) is True
    with db.transaction(s.database_url) as session:
        accounts.disable(session, "test", "eve")
    assert asyncio.run(auth.refresh_user(user)) is False
