"""`enclave user reset-mfa` and `enclave mfa rotate-key` through the real CLI."""

from __future__ import annotations

import pytest

from enclave import db
from enclave.models import Account, AccountStatus, AuditEvent

from hub.auth import login
from tests.support.users import enrol, enrolled_user, totp_code


def test_reset_mfa_clears_everything_and_prints_a_new_link_last(enclave_env, cli):
    old = enrolled_user(enclave_env.settings, "ann")
    code, out, err = cli("user", "reset-mfa", "ann")
    assert code == 0, err
    link = out.strip().splitlines()[-1]
    assert link.startswith("http://127.0.0.1:8000/hub/enrol/")
    with db.transaction(enclave_env.db_url) as s:
        acc = s.query(Account).filter_by(username="ann").one()
        assert acc.status == AccountStatus.pending and acc.totp_secret is None
        assert acc.recovery_codes == [] and acc.locked_until is None
        assert s.query(AuditEvent).filter_by(action="user.reset_mfa", target="ann").count() == 1
    # the old factors no longer let anyone in
    with pytest.raises(login.LoginRefused) as exc:
        login.password_login(enclave_env.settings, "ann", old.password, old.recovery_codes[0], "10.0.0.1")
    assert exc.value.reason == "pending"
    # the new link works and gives a new seed
    new = enrol(enclave_env.settings, link.rsplit("/", 1)[1])
    assert new.totp_secret != old.totp_secret
    assert login.password_login(enclave_env.settings, "ann", new.password, totp_code(new.totp_secret), "x").username == "ann"


def test_reset_mfa_of_unknown_or_disabled_user_is_refused(enclave_env, cli):
    code, out, err = cli("user", "reset-mfa", "ghost")
    assert code == 2 and "no user 'ghost'" in err
    enrolled_user(enclave_env.settings, "ann")
    assert cli("user", "disable", "ann")[0] == 0
    code, out, err = cli("user", "reset-mfa", "ann")
    assert code == 2 and "disabled" in err
    with db.transaction(enclave_env.db_url) as s:
        assert s.query(Account).filter_by(username="ann").one().totp_secret is not None  # nothing changed


def test_rotate_key_keeps_logins_working(enclave_env, cli):
    ann = enrolled_user(enclave_env.settings, "ann")
    keys = enclave_env.state_dir / "secrets" / "mfa.keys"
    before = keys.read_bytes()
    code, out, err = cli("mfa", "rotate-key")
    assert code == 0, err
    assert "1 TOTP seed(s) re-encrypted" in out
    lines = keys.read_bytes().splitlines()
    assert len(lines) == 2 and lines[1] + b"\n" == before
    keys.write_bytes(lines[0] + b"\n")  # the old key can go: every seed uses the new one
    assert login.password_login(enclave_env.settings, "ann", ann.password, totp_code(ann.totp_secret), "x")
