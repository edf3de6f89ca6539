"""The login decision (hub.auth.login) on a real database: each refusal, its audit reason, lockout expiry,
the per-address throttle, replay, recovery codes, and `second_factor` for SSO."""

from __future__ import annotations

import datetime as dt
import json
import threading

import pytest

from enclave import clock, db
from enclave.cli import main as cli_main  # noqa: F401 - the CLI module loads with ours
from enclave.models import Account, AuditEvent

from hub.auth import login, passwords
from tests.conftest import BOTH
from tests.support.users import enrolled_user, pending_user, totp_code


def _reasons(env) -> list[str]:
    with db.transaction(env.db_url) as s:
        rows = s.query(AuditEvent).filter(AuditEvent.action == "login.failed").order_by(AuditEvent.seq)
        return [json.loads(e.detail)["reason"] for e in rows]


def _login(env, user, otp=None, **kw):
    return login.password_login(
        env.settings, kw.get("username", user.username), kw.get("password", user.password),
        totp_code(user.totp_secret) if otp is None else otp, kw.get("source", "10.0.0.1"),
    )


@pytest.mark.parametrize("db_url", BOTH, indirect=True)
def test_good_login_and_every_refusal_is_audited(enclave_env):
    ann = enrolled_user(enclave_env.settings, "ann", role="steward")
    code = totp_code(ann.totp_secret)
    ok = _login(enclave_env, ann, otp=code)
    assert ok == login.LoggedIn("ann", "steward")
    cases = [
        (dict(otp=""), "missing_otp", "Enter the 6-digit code"),
        (dict(otp="000000" if totp_code(ann.totp_secret) != "000000" else "111111"), "bad_otp", login.GENERIC),
        (dict(otp=code), "replayed_otp", "That code was already used"),
        (dict(password="wrong password!"), "bad_password", login.GENERIC),
        (dict(username="nobody"), "unknown_user", login.GENERIC),
    ]
    for kw, reason, message in cases:
        with pytest.raises(login.LoginRefused) as exc:
            _login(enclave_env, ann, **kw)
        assert exc.value.reason == reason and message in str(exc.value)
    assert _reasons(enclave_env) == [c[1] for c in cases]
    with db.transaction(enclave_env.db_url) as s:
        from enclave import audit

        assert audit.verify(s).ok


def test_lockout_then_unlock_after_the_lock_time(enclave_env, monkeypatch):
    ann = enrolled_user(enclave_env.settings, "ann")
    for _ in range(5):
        with pytest.raises(login.LoginRefused):
            _login(enclave_env, ann, password="not the password")
    with pytest.raises(login.LoginRefused) as exc:
        _login(enclave_env, ann)
    assert exc.value.reason == "locked"
    assert "Account locked after 5 failed attempts; try again after" in str(exc.value)
    later = clock.now() + dt.timedelta(minutes=16)
    monkeypatch.setattr(clock, "now", lambda: later)
    with db.transaction(enclave_env.db_url) as s:  # a new code for the later time
        s.query(Account).filter_by(username="ann").one().totp_last_counter = 0
    import pyotp

    code = pyotp.TOTP(ann.totp_secret).at(later.replace(tzinfo=dt.UTC))
    assert _login(enclave_env, ann, otp=code).username == "ann"


def test_locked_account_is_refused_without_checking_the_password(enclave_env, monkeypatch):
    ann = enrolled_user(enclave_env.settings, "ann")
    with db.transaction(enclave_env.db_url) as s:
        s.query(Account).filter_by(username="ann").one().locked_until = clock.now() + dt.timedelta(minutes=5)
    calls = []
    monkeypatch.setattr(passwords, "verify_password", lambda *a: calls.append(a) or True)
    with pytest.raises(login.LoginRefused) as exc:
        _login(enclave_env, ann)
    assert exc.value.reason == "locked" and calls == []


def test_unknown_user_costs_a_hash_like_a_known_one(enclave_env, monkeypatch):
    enrolled_user(enclave_env.settings, "ann")
    seen = []
    real = passwords.verify_password
    monkeypatch.setattr(passwords, "verify_password", lambda s, h, p: seen.append(h) or real(s, h, p))
    with pytest.raises(login.LoginRefused):
        login.password_login(enclave_env.settings, "nobody", "x" * 12, "123456", "10.0.0.1")
    assert seen == [None]  # the dummy hash was checked


def test_throttle_per_source_address(enclave_env):
    enclave_env.settings.auth.ip_max_failures = 3
    ann = enrolled_user(enclave_env.settings, "ann")
    for name in ("a1", "a2", "a3"):
        with pytest.raises(login.LoginRefused):
            _login(enclave_env, ann, username=name, source="192.0.2.7")
    with pytest.raises(login.LoginRefused) as exc:
        _login(enclave_env, ann, source="192.0.2.7")
    assert exc.value.reason == "throttled_ip" and "wait 15 minutes" in str(exc.value)
    # another address is not affected
    assert _login(enclave_env, ann, source="192.0.2.8").username == "ann"


@pytest.mark.parametrize("status", ["disabled", "pending"])
def test_inactive_accounts_are_refused(enclave_env, status):
    if status == "disabled":
        user = enrolled_user(enclave_env.settings, "ann")
        from enclave import accounts

        with db.transaction(enclave_env.db_url) as s:
            accounts.disable(s, "test", "ann")
        with pytest.raises(login.LoginRefused) as exc:
            _login(enclave_env, user)
        assert "This account is disabled" in str(exc.value)
    else:
        pending_user(enclave_env.settings, "bob")
        with pytest.raises(login.LoginRefused) as exc:
            login.password_login(enclave_env.settings, "bob", "whatever it is", "123456", "10.0.0.1")
        assert "not been enrolled yet" in str(exc.value)
    assert exc.value.reason == status


def test_recovery_code_once_and_audited(enclave_env):
    ann = enrolled_user(enclave_env.settings, "ann")
    assert _login(enclave_env, ann, otp=ann.recovery_codes[0]).username == "ann"
    with pytest.raises(login.LoginRefused) as exc:
        _login(enclave_env, ann, otp=ann.recovery_codes[0])
    assert exc.value.reason == "bad_otp"
    with db.transaction(enclave_env.db_url) as s:
        assert s.query(AuditEvent).filter_by(action="login.recovery_code_used").count() == 1


def test_second_factor_failure_survives_the_callers_rollback(enclave_env):
    ann = enrolled_user(enclave_env.settings, "ann")
    with pytest.raises(login.LoginRefused) as exc:
        with db.transaction(enclave_env.db_url) as s:
            account = s.query(Account).filter_by(username="ann").one()
            login.second_factor(s, enclave_env.settings, account, "000000" if totp_code(ann.totp_secret) != "000000" else "111111", "sso")
    assert exc.value.reason == "bad_otp"
    with db.transaction(enclave_env.db_url) as s:
        assert s.query(Account).filter_by(username="ann").one().failed_logins == 1
    assert _reasons(enclave_env) == ["bad_otp"]
    with db.transaction(enclave_env.db_url) as s:  # and the right code passes
        account = s.query(Account).filter_by(username="ann").one()
        login.second_factor(s, enclave_env.settings, account, totp_code(ann.totp_secret), "sso")


@pytest.mark.parametrize("db_url", BOTH, indirect=True)
def test_twenty_concurrent_logins(enclave_env):
    users = [enrolled_user(enclave_env.settings, f"u{i:02d}") for i in range(20)]
    errors, done = [], []

    def one(u):
        try:
            done.append(_login(enclave_env, u).username)
        except Exception as exc:  # noqa: BLE001 - collected for the assert
            errors.append(repr(exc))

    threads = [threading.Thread(target=one, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and sorted(done) == [u.username for u in users]


def test_raised_kdf_cost_upgrades_the_hash_at_next_login(enclave_env):
    ann = enrolled_user(enclave_env.settings, "ann")
    with db.transaction(enclave_env.db_url) as s:
        before = s.query(Account).filter_by(username="ann").one().password_hash
    assert "t=2" in before and "m=19456" in before
    enclave_env.settings.auth.argon2_time_cost = 3
    _login(enclave_env, ann)
    with db.transaction(enclave_env.db_url) as s:
        after = s.query(Account).filter_by(username="ann").one().password_hash
        assert s.query(AuditEvent).filter_by(action="user.password_rehash").count() == 1
    assert "t=3" in after
    assert passwords.verify_password(enclave_env.settings, after, ann.password)


def test_kdf_below_owasp_is_refused_at_start_up(tmp_path):
    from enclave.settings import SettingsError, load

    cfg = tmp_path / "enclave.toml"
    cfg.write_text("[auth]\nargon2_memory_kib = 4096\n")
    with pytest.raises(SettingsError, match="argon2_memory_kib below OWASP"):
        load(cfg)


def test_no_stored_hash_never_verifies(enclave_env):
    assert passwords.verify_password(enclave_env.settings, None, "no account has this password") is False
    assert passwords.verify_password(enclave_env.settings, "not-a-hash", "x") is False


@pytest.mark.parametrize("db_url", BOTH, indirect=True)
def test_concurrent_failures_from_a_new_address_are_all_counted(enclave_env):
    """First failures from one address arrive together: each is refused and counted, none crashes."""
    results: list[str] = []

    def guess(i):
        try:
            login.password_login(enclave_env.settings, f"guess{i}", "wrong password", "123456", "198.51.100.9")
        except login.LoginRefused as exc:
            results.append(exc.reason)
        except Exception as exc:  # noqa: BLE001 - collected for the assert
            results.append(repr(exc))

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == ["unknown_user"] * 10
    from enclave.models import LoginThrottle

    with db.transaction(enclave_env.db_url) as s:
        assert s.get(LoginThrottle, "198.51.100.9").failures == 10
