"""Login through the real JupyterHub form (password + TOTP), as a person would see it."""

from __future__ import annotations

import html

import pytest
import requests

from hub import audit, db
from hub.models import AuditEvent
from tests.conftest import BOTH
from tests.support.fixtures import running_hub  # noqa: F401
from tests.support.users import enrolled_user, pending_user, totp_code


def _page_says(r: requests.Response, text: str) -> bool:
    return text in html.unescape(r.text)


def _failed_reasons(env) -> list[str]:
    import json

    with db.transaction(env.db_url) as s:
        rows = s.query(AuditEvent).filter(AuditEvent.action == "login.failed").order_by(AuditEvent.seq).all()
        return [json.loads(e.detail)["reason"] for e in rows]


@pytest.mark.parametrize("db_url", BOTH, indirect=True)
def test_correct_login_lands_on_home_page(enclave_env, running_hub):
    user = enrolled_user(enclave_env.settings, "ann")
    http = requests.Session()
    r = running_hub.login(http, user)
    assert r.status_code == 200, r.text[-2000:]
    assert r.url.startswith(running_hub.url + "/hub/home"), r.url
    assert "ann" in r.text and "Logout" in r.text
    with db.transaction(enclave_env.db_url) as s:
        assert audit.verify(s).ok
        assert s.query(AuditEvent).filter_by(action="login.ok", target="ann").count() == 1


def _fresh(hub, user, otp=None, **kw):
    return hub.login(requests.Session(), user, otp, **kw)


def _refused_with(r: requests.Response, hub, message: str) -> None:
    assert r.status_code == 403, (r.status_code, r.url)
    assert r.url.startswith(hub.url + "/hub/login"), r.url
    assert _page_says(r, message), html.unescape(r.text)[-3000:]
    assert 'name="otp"' in r.text  # the form is shown again, ready for another try


def test_login_without_code_is_refused(enclave_env, running_hub):
    user = enrolled_user(enclave_env.settings, "ann")
    r = _fresh(running_hub, user, otp="")
    _refused_with(r, running_hub, "Enter the 6-digit code from your authenticator app")
    assert _failed_reasons(enclave_env) == ["missing_otp"]


def test_wrong_code_and_wrong_password_look_the_same(enclave_env, running_hub):
    user = enrolled_user(enclave_env.settings, "ann")
    wrong = f"{(int(totp_code(user.totp_secret)) + 1) % 1000000:06d}"
    r1 = _fresh(running_hub, user, otp=wrong)
    r2 = _fresh(running_hub, user, password=user.password + "x")
    r3 = _fresh(running_hub, user, username="nobody")
    for r in (r1, r2, r3):
        _refused_with(r, running_hub, "Wrong user name, password or code.")
    assert _failed_reasons(enclave_env) == ["bad_otp", "bad_password", "unknown_user"]


def test_replayed_code_is_refused(enclave_env, running_hub):
    user = enrolled_user(enclave_env.settings, "ann")
    code = totp_code(user.totp_secret, offset_steps=1)
    first = _fresh(running_hub, user, otp=code)
    assert first.url.startswith(running_hub.url + "/hub/home")
    again = _fresh(running_hub, user, otp=code)  # e.g. someone who watched the first login
    _refused_with(again, running_hub, "That code was already used; wait for the next one.")


@pytest.mark.parametrize("db_url", BOTH, indirect=True)
def test_lockout_after_five_failures_survives_restart(enclave_env, running_hub):
    user = enrolled_user(enclave_env.settings, "ann")
    for _ in range(5):
        _refused_with(_fresh(running_hub, user, password="not-the-password"), running_hub,
                      "Wrong user name, password or code.")
    locked = _fresh(running_hub, user)  # right password and code, but locked now
    _refused_with(locked, running_hub, "Account locked after 5 failed attempts; try again after")
    assert "UTC or ask an administrator" in html.unescape(locked.text)
    running_hub.restart()
    still = _fresh(running_hub, user, otp=totp_code(user.totp_secret, offset_steps=1))
    _refused_with(still, running_hub, "Account locked after 5 failed attempts")


def test_disabled_user_cannot_log_in(enclave_env, running_hub, cli):
    user = enrolled_user(enclave_env.settings, "ann")
    code, out, err = cli("user", "disable", "ann")
    assert code == 0, err
    r = _fresh(running_hub, user)
    _refused_with(r, running_hub, "This account is disabled")


def test_pending_user_is_told_to_enrol(enclave_env, running_hub):
    pending_user(enclave_env.settings, "bob")
    r = running_hub.login(requests.Session(), None, otp="123456", username="bob", password="whatever-it-is")
    _refused_with(r, running_hub, "This account has not been enrolled yet")


def test_recovery_code_works_once(enclave_env, running_hub):
    user = enrolled_user(enclave_env.settings, "ann")
    code = user.recovery_codes[0]
    ok = _fresh(running_hub, user, otp=code)
    assert ok.status_code == 200 and ok.url.startswith(running_hub.url + "/hub/home"), ok.url
    again = _fresh(running_hub, user, otp=code)
    _refused_with(again, running_hub, "Wrong user name, password or code.")
    with db.transaction(enclave_env.db_url) as s:
        assert s.query(AuditEvent).filter_by(action="login.recovery_code_used", target="ann").count() == 1


@pytest.mark.parametrize("running_hub", [{"auth": {"ip_max_failures": 3, "ip_window_minutes": 10}}],
                         indirect=True, ids=["max3"])
def test_source_address_is_throttled(enclave_env, running_hub):
    ann = enrolled_user(enclave_env.settings, "ann")
    for name in ("x1", "x2", "x3"):  # guesses spread over several names
        _fresh(running_hub, ann, username=name)
    r = _fresh(running_hub, ann)  # even a right login from this address waits now
    _refused_with(r, running_hub, "Too many failed attempts from your address; wait 10 minutes.")
    assert _failed_reasons(enclave_env)[-1] == "throttled_ip"
