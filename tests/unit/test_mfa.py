"""TOTP replay protection, seed encryption and recovery codes (hub.auth.mfa) on a real database."""

from __future__ import annotations

import datetime as dt

import pyotp
import pytest

from enclave import db, secrets_store
from enclave.models import Account

from hub.auth import mfa
from tests.support.users import enrolled_user


def _at(secret: str, when: dt.datetime) -> str:
    return pyotp.TOTP(secret).at(when.replace(tzinfo=dt.UTC))


def test_seed_is_stored_encrypted_and_readable_with_the_keyring(enclave_env):
    user = enrolled_user(enclave_env.settings, "ann")
    keyring = secrets_store.mfa_keyring(enclave_env.state_dir)
    with db.transaction(enclave_env.db_url) as s:
        acc = s.query(Account).filter_by(username="ann").one()
        assert user.totp_secret.encode() not in bytes(acc.totp_secret)
        assert mfa.decrypt(keyring, acc.totp_secret) == user.totp_secret


def test_each_time_step_is_accepted_once(enclave_env):
    user = enrolled_user(enclave_env.settings, "ann")
    keyring = secrets_store.mfa_keyring(enclave_env.state_dir)
    now = dt.datetime(2030, 1, 1, 12, 0, 10)
    with db.transaction(enclave_env.db_url) as s:
        acc = s.query(Account).filter_by(username="ann").one()
        acc.totp_last_counter = 0
        code = _at(user.totp_secret, now)
        assert mfa.check_totp(acc, code, keyring, now) is mfa.CodeCheck.ok
        assert mfa.check_totp(acc, code, keyring, now) is mfa.CodeCheck.replayed
        # the previous step's code is inside the window but older than the accepted one: replay
        prev = _at(user.totp_secret, now - dt.timedelta(seconds=30))
        assert mfa.check_totp(acc, prev, keyring, now) is mfa.CodeCheck.replayed
        # next step still fine, once
        nxt = _at(user.totp_secret, now + dt.timedelta(seconds=30))
        assert mfa.verify_totp(acc, nxt, keyring, now)
        assert not mfa.verify_totp(acc, nxt, keyring, now)


@pytest.mark.parametrize("code", ["", "12345", "abcdef", "1234567"], ids=["empty", "short", "letters", "long"])
def test_malformed_codes_are_wrong(enclave_env, code):
    enrolled_user(enclave_env.settings, "ann")
    keyring = secrets_store.mfa_keyring(enclave_env.state_dir)
    with db.transaction(enclave_env.db_url) as s:
        acc = s.query(Account).filter_by(username="ann").one()
        assert mfa.check_totp(acc, code, keyring) is mfa.CodeCheck.wrong


def test_code_outside_window_is_wrong(enclave_env):
    user = enrolled_user(enclave_env.settings, "ann")
    keyring = secrets_store.mfa_keyring(enclave_env.state_dir)
    now = dt.datetime(2030, 1, 1, 12, 0, 10)
    with db.transaction(enclave_env.db_url) as s:
        acc = s.query(Account).filter_by(username="ann").one()
        acc.totp_last_counter = 0
        old = _at(user.totp_secret, now - dt.timedelta(seconds=90))
        assert mfa.check_totp(acc, old, keyring, now) is mfa.CodeCheck.wrong


def test_recovery_codes_hashed_and_single_use(enclave_env):
    user = enrolled_user(enclave_env.settings, "ann")
    assert len(user.recovery_codes) == 10 and len(set(user.recovery_codes)) == 10
    with db.transaction(enclave_env.db_url) as s:
        acc = s.query(Account).filter_by(username="ann").one()
        stored = [rc.code_hash for rc in acc.recovery_codes]
        assert not any(code in h for code in user.recovery_codes for h in stored)
        assert mfa.use_recovery_code(acc, user.recovery_codes[3].upper())  # case and dash do not matter
        assert not mfa.use_recovery_code(acc, user.recovery_codes[3])
        assert not mfa.use_recovery_code(acc, "zzzzz-zzzzz")
        assert mfa.unused_recovery_codes(acc) == 9


def test_rotate_key_reencrypts_every_seed(enclave_env):
    a = enrolled_user(enclave_env.settings, "ann")
    b = enrolled_user(enclave_env.settings, "bob")
    old_keys = (enclave_env.state_dir / "secrets" / "mfa.keys").read_bytes()
    secrets_store.rotate_mfa_key(enclave_env.state_dir)
    with db.transaction(enclave_env.db_url) as s:
        assert mfa.rotate_key(s, enclave_env.state_dir, secrets_store.mfa_keyring) == 2
    # only the new key is needed now
    new_key = (enclave_env.state_dir / "secrets" / "mfa.keys").read_bytes().splitlines()[0]
    assert new_key not in old_keys
    from cryptography.fernet import Fernet, MultiFernet

    only_new = MultiFernet([Fernet(new_key)])
    with db.transaction(enclave_env.db_url) as s:
        for user in (a, b):
            acc = s.query(Account).filter_by(username=user.username).one()
            assert mfa.decrypt(only_new, acc.totp_secret) == user.totp_secret
