"""Login through the real JupyterHub form (password + TOTP), as a person would see it.

Most refusals share one hub for the module (each test its own account; ~7 counted failures from
127.0.0.1 stay under the per-address limit of 20); tests that need their own settings, a restart or
PostgreSQL start their own hub.
"""

from __future__ import annotations

import html
import json
import time

import pytest
import requests

from enclave import accounts, audit, db
from enclave.models import AuditEvent

from tests.conftest import BOTH
from tests.support.env import make_env
from tests.support.fixtures import running_hub, started_hub  # noqa: F401
from tests.support.users import enrolled_user, pending_user, totp_code


@pytest.fixture(scope="module")
def shared_env(tmp_path_factory):
    return make_env(tmp_path_factory.mktemp("shared-hub"))


@pytest.fixture(scope="module")
def shared_hub(shared_env):
    with started_hub(shared_env, {"auth": {"recheck_seconds": 1}}) as hub:
        yield hub


def _page_says(r: requests.Response, text: str) -> bool:
    return text in html.unescape(r.text)


def _failed_reasons(env, username: str | None = None) -> list[str]:
    with db.transaction(env.db_url) as s:
        q = s.query(AuditEvent).filter(AuditEvent.action == "login.failed")
        if username:
            q = q.filter(AuditEvent.target == username)
        return [json.loads(e.detail)["reason"] for e in q.order_by(AuditEvent.seq)]


def _fresh(hub, user, otp=None, **kw):
    return hub.login(requests.Session(), user, otp, **kw)


def _lands_home(r: requests.Response, hub, username: str) -> None:
    assert r.status_code == 200, (r.status_code, r.url, html.unescape(r.text)[-2000:])
    assert r.url.startswith(hub.url + "/hub/home"), r.url
    assert username in r.text and "Logout" in r.text


def _refused_with(r: requests.Response, hub, message: str) -> None:
    assert r.status_code == 403, (r.status_code, r.url)
    assert r.url.startswith(hub.url + "/hub/login"), r.url
    assert _page_says(r, message), html.unescape(r.text)[-3000:]
    assert 'name="otp"' in r.text  # the form is shown again, ready for another try


@pytest.mark.parametrize("db_url", BOTH, indirect=True)
def test_correct_login_lands_on_home_page(enclave_env, running_hub):
    user = enrolled_user(enclave_env.settings, "ann")
    _lands_home(running_hub.login(requests.Session(), user), running_hub, "ann")
    with db.transaction(enclave_env.db_url) as s:
        assert audit.verify(s).ok
        assert s.query(AuditEvent).filter_by(action="login.ok", target="ann").count() == 1


def test_login_without_code_is_refused(shared_env, shared_hub):
    user = enrolled_user(shared_env.settings, "nocode")
    _refused_with(_fresh(shared_hub, user, otp=""), shared_hub, "Enter the 6-digit code from your authenticator app")
    assert _failed_reasons(shared_env, "nocode") == ["missing_otp"]


def test_wrong_code_wrong_password_unknown_user_look_the_same(shared_env, shared_hub):
    user = enrolled_user(shared_env.settings, "wrong")
    bad_code = f"{(int(totp_code(user.totp_secret)) + 1) % 1000000:06d}"
    for r in (_fresh(shared_hub, user, otp=bad_code),
              _fresh(shared_hub, user, password=user.password + "x"),
              _fresh(shared_hub, user, username="nobody")):
        _refused_with(r, shared_hub, "Wrong user name, password or code.")
    assert _failed_reasons(shared_env, "wrong") == ["bad_otp", "bad_password"]
    assert _failed_reasons(shared_env, "nobody") == ["unknown_user"]


def test_replayed_code_is_refused(shared_env, shared_hub):
    user = enrolled_user(shared_env.settings, "replay")
    code = totp_code(user.totp_secret, offset_steps=1)
    _lands_home(_fresh(shared_hub, user, otp=code), shared_hub, "replay")
    again = _fresh(shared_hub, user, otp=code)  # e.g. someone who watched the first login
    _refused_with(again, shared_hub, "That code was already used; wait for the next one.")


def test_disabled_user_cannot_log_in_and_loses_an_open_session(shared_env, shared_hub):
    user = enrolled_user(shared_env.settings, "gone")
    http = requests.Session()
    _lands_home(shared_hub.login(http, user), shared_hub, "gone")
    with db.transaction(shared_env.db_url) as s:
        accounts.disable(s, "test", "gone")
    time.sleep(1.5)  # [auth] recheck_seconds = 1 for this hub
    home = http.get(shared_hub.url + "/hub/home", timeout=30)
    assert home.url.startswith(shared_hub.url + "/hub/login"), home.url  # sent back to the login page
    r = _fresh(shared_hub, user, otp=totp_code(user.totp_secret, offset_steps=1))
    _refused_with(r, shared_hub, "This account is disabled")


def test_pending_user_is_told_to_enrol(shared_env, shared_hub):
    pending_user(shared_env.settings, "newbie")
    r = shared_hub.login(requests.Session(), None, otp="123456", username="newbie", password="whatever-it-is")
    _refused_with(r, shared_hub, "This account has not been enrolled yet")


def test_recovery_code_works_once(shared_env, shared_hub):
    user = enrolled_user(shared_env.settings, "lostphone")
    code = user.recovery_codes[0]
    _lands_home(_fresh(shared_hub, user, otp=code), shared_hub, "lostphone")
    _refused_with(_fresh(shared_hub, user, otp=code), shared_hub, "Wrong user name, password or code.")
    with db.transaction(shared_env.db_url) as s:
        assert s.query(AuditEvent).filter_by(action="login.recovery_code_used", target="lostphone").count() == 1
        assert audit.verify(s).ok


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


@pytest.mark.parametrize("running_hub", [{"auth": {"ip_max_failures": 3, "ip_window_minutes": 10}}],
                         indirect=True, ids=["max3"])
def test_source_address_is_throttled(enclave_env, running_hub):
    ann = enrolled_user(enclave_env.settings, "ann")
    for name in ("x1", "x2", "x3"):  # guesses spread over several names
        _fresh(running_hub, ann, username=name)
    r = _fresh(running_hub, ann)  # even a right login from this address waits now
    _refused_with(r, running_hub, "Too many failed attempts from your address; wait 10 minutes.")
    assert _failed_reasons(enclave_env)[-1] == "throttled_ip"


@pytest.mark.parametrize("role, shows, hides", [
    ("researcher", 'id="no-projects"', 'id="enclave-steward"'),
    ("steward", 'id="enclave-steward"', 'id="no-projects"'),
    ("admin", 'id="enclave-admin"', 'id="no-projects"'),
])
def test_the_home_page_shows_what_applies_to_the_role(shared_env, shared_hub, role, shows, hides):
    user = enrolled_user(shared_env.settings, f"home{role}", role=role)
    r = _fresh(shared_hub, user)
    _lands_home(r, shared_hub, user.username)
    assert shows in r.text and hides not in r.text


def test_the_public_register_needs_no_login_and_shows_no_person(shared_env, shared_hub, tmp_path):
    """The transparency register is published by the hub's proxy to anyone; the people of the enclave
    are not on it."""
    from enclave import projects

    with db.transaction(shared_env.db_url) as s:
        projects.create(s, "test", "register", str(tmp_path), purpose="Public purpose of the study")
        accounts.add(s, "test", "regann", accounts.Role.researcher, 24)
        projects.add_member(s, "test", "register", "regann")
    for _ in range(60):  # the hub starts its managed services in the background
        r = requests.get(shared_hub.url + "/services/transparency/", timeout=30, allow_redirects=False)
        if r.status_code == 200:
            break
        time.sleep(1)
    assert r.status_code == 200 and "Public purpose of the study" in r.text
    assert "regann" not in r.text
    signed = requests.get(shared_hub.url + "/services/transparency/register.json", timeout=30).json()
    assert signed["signature"]["alg"] == "Ed25519" and signed["register"]["audit"]["head"]["seq"] > 0
