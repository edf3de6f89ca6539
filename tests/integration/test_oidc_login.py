"""Institutional SSO against a real JupyterHub and a real (test) OpenID Connect provider, both on loopback.

One hub and one IdP serve the whole module (each test uses its own accounts); a requests.Session plays
the browser and follows every redirect through the IdP. The forged-token case is REFUSED outright
(HTTP 403, nobody logged in), not downgraded to the TOTP step: an id_token that fails verification
gives no trusted identity at all.
"""

from __future__ import annotations

import json
import re

import pytest
import requests
from sqlalchemy import select

from enclave import accounts, audit, db
from enclave.models import AuditEvent

from tests.support.env import make_env
from tests.support.fixtures import started_hub
from tests.support.hub import xsrf_from
from tests.support.oidc_provider import OIDCProvider
from tests.support.users import enrolled_user, pending_user, totp_code

ACR_MFA = "https://refeds.org/profile/mfa"


@pytest.fixture(scope="module")
def idp():
    with OIDCProvider(client_id="enclave-hub") as provider:
        yield provider


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return make_env(tmp_path_factory.mktemp("oidc-hub"))


@pytest.fixture(scope="module")
def hub(env, idp):
    extra = {
        "oidc": {"enabled": True, "issuer": idp.issuer, "client_id": idp.client_id,
                 "client_secret": idp.client_secret, "mfa_acr_values": [ACR_MFA]},
        # every test fails codes from 127.0.0.1 on purpose: keep the per-address throttle out of the way
        "auth": {"ip_max_failures": 1000},
    }
    with started_hub(env, extra) as running:
        yield running


def idp_login(hub, idp, http, username, *, sub=None, **claims) -> requests.Response:
    """Click "Sign in with ..." on the hub's login page; the IdP signs in `username`."""
    page = http.get(hub.url + "/hub/login", timeout=30)
    m = re.search(r'href=\'([^\']*oauth_login[^\']*)\'', page.text)
    assert m, "the login page offers no institutional sign-in button"
    assert "Sign in with your institution" in page.text
    idp.next_login(sub or f"sub-{username}", username, **claims)
    return http.get(hub.url + m.group(1).replace("&amp;", "&"), timeout=60)


def post_code(hub, http, page: requests.Response, code: str) -> requests.Response:
    return http.post(hub.url + "/hub/mfa", data={"_xsrf": xsrf_from(page.text), "otp": code}, timeout=60)


def logged_in(hub, http) -> bool:
    r = http.get(hub.url + "/hub/api/user", timeout=30)
    return r.status_code == 200


def events(env, username: str) -> list[tuple[str, dict]]:
    with db.transaction(env.db_url) as session:
        rows = session.execute(
            select(AuditEvent).where(AuditEvent.target == username).order_by(AuditEvent.seq)
        ).scalars()
        return [(e.action, json.loads(e.detail)) for e in rows]


def test_without_mfa_claim_the_enclave_code_is_asked_and_checked(hub, idp, env):
    user = enrolled_user(env.settings, "sso-ann")
    http = requests.Session()
    step = idp_login(hub, idp, http, user.username, amr=["pwd"])
    assert step.status_code == 200 and step.url == hub.url + "/hub/mfa"
    assert "One more step" in step.text and "sso-ann" in step.text
    assert not logged_in(hub, http), "the IdP alone must not give a hub session"

    wrong = post_code(hub, http, step, "000000" if totp_code(user.totp_secret) != "000000" else "111111")
    assert wrong.status_code == 403
    assert "That code is not right" in wrong.text
    assert not logged_in(hub, http)

    ok = post_code(hub, http, wrong, totp_code(user.totp_secret))
    assert ok.status_code == 200 and ok.url.startswith(hub.url + "/hub/home")
    assert logged_in(hub, http)
    assert http.get(hub.url + "/hub/api/user", timeout=30).json()["name"] == "sso-ann"

    actions = events(env, "sso-ann")
    sso = [(a, d) for a, d in actions if a.startswith("login")]
    assert [a for a, _ in sso] == ["login.sso.idp_ok", "login.failed", "login.ok"]
    assert sso[0][1]["sub"] == "sub-sso-ann"
    assert sso[1][1]["reason"] == "bad_otp"
    assert sso[2][1]["method"] == "sso+totp"


def test_idp_asserting_mfa_goes_straight_in_with_pkce_and_nonce(hub, idp, env):
    enrolled_user(env.settings, "sso-bob")
    http = requests.Session()
    r = idp_login(hub, idp, http, "sso-bob", amr=["pwd", "mfa"])
    assert r.status_code == 200 and r.url.startswith(hub.url + "/hub/home")
    assert logged_in(hub, http)
    authorize, token = idp.authorize_requests[-1], idp.token_requests[-1]
    assert authorize["code_challenge_method"] == "S256" and authorize["nonce"]
    assert token["code_verifier"]
    assert [(a, d["method"]) for a, d in events(env, "sso-bob") if a == "login.ok"] == [("login.ok", "sso+idp_mfa")]


def test_configured_acr_counts_as_mfa(hub, idp, env):
    enrolled_user(env.settings, "sso-cat")
    http = requests.Session()
    r = idp_login(hub, idp, http, "sso-cat", acr=ACR_MFA)
    assert r.url.startswith(hub.url + "/hub/home") and logged_in(hub, http)
    http2 = requests.Session()
    r2 = idp_login(hub, idp, http2, "sso-cat", acr="urn:example:loa:1")
    assert r2.url == hub.url + "/hub/mfa" and not logged_in(hub, http2)


def test_forged_id_token_claiming_mfa_is_refused(hub, idp, env):
    enrolled_user(env.settings, "sso-dan")
    http = requests.Session()
    r = idp_login(hub, idp, http, "sso-dan", amr=["pwd", "mfa"], signing="attacker")
    assert r.status_code == 403
    assert "signature does not verify" in r.text
    assert not logged_in(hub, http)
    assert http.get(hub.url + "/hub/mfa", timeout=30).status_code == 403, "no half-done login either"
    with db.transaction(env.db_url) as session:
        last = session.execute(select(AuditEvent).order_by(AuditEvent.seq.desc())).scalars().first()
        assert last.action == "login.failed" and json.loads(last.detail)["reason"] == "bad_signature"
    assert not [a for a, _ in events(env, "sso-dan") if a.startswith("login")]


def test_id_token_from_another_issuer_is_refused(hub, idp, env):
    enrolled_user(env.settings, "sso-eve")
    http = requests.Session()
    r = idp_login(hub, idp, http, "sso-eve", amr=["mfa"], extra_claims={"iss": "https://elsewhere.example"})
    assert r.status_code == 403 and "not valid for this enclave" in r.text
    assert not logged_in(hub, http)


def test_unknown_account_is_refused_with_a_message(hub, idp, env):
    http = requests.Session()
    r = idp_login(hub, idp, http, "nobody-here", amr=["mfa"])
    assert r.status_code == 403
    assert "has no account in this enclave" in r.text
    assert not logged_in(hub, http)
    assert events(env, "nobody-here")[-1] == ("login.failed", {
        "reason": "unknown_user", "method": "sso", "source": "127.0.0.1", "sub": "sub-nobody-here"})


def test_disabled_account_is_refused(hub, idp, env):
    enrolled_user(env.settings, "sso-fay")
    with db.transaction(env.db_url) as session:
        accounts.disable(session, "test", "sso-fay")
    for claims in ({"amr": ["mfa"]}, {"amr": ["pwd"]}):
        http = requests.Session()
        r = idp_login(hub, idp, http, "sso-fay", **claims)
        assert r.status_code == 403 and "This account is disabled" in r.text
        assert not logged_in(hub, http)


def test_account_that_has_not_enrolled_is_refused(hub, idp, env):
    pending_user(env.settings, "sso-gus")
    http = requests.Session()
    r = idp_login(hub, idp, http, "sso-gus", amr=["pwd"])
    assert r.status_code == 403 and "has not been enrolled yet" in r.text


def test_replayed_totp_code_is_refused(hub, idp, env):
    user = enrolled_user(env.settings, "sso-hal")
    code = totp_code(user.totp_secret)
    first = requests.Session()
    ok = post_code(hub, first, idp_login(hub, idp, first, "sso-hal"), code)
    assert ok.url.startswith(hub.url + "/hub/home")

    second = requests.Session()
    step = idp_login(hub, idp, second, "sso-hal")
    again = post_code(hub, second, step, code)
    assert again.status_code == 403 and "already used" in again.text
    assert not logged_in(hub, second)
    assert events(env, "sso-hal")[-1][1]["reason"] == "replayed_otp"


def test_recovery_code_works_once_at_the_totp_step(hub, idp, env):
    user = enrolled_user(env.settings, "sso-ida")
    http = requests.Session()
    ok = post_code(hub, http, idp_login(hub, idp, http, "sso-ida"), user.recovery_codes[0])
    assert ok.url.startswith(hub.url + "/hub/home")
    http2 = requests.Session()
    again = post_code(hub, http2, idp_login(hub, idp, http2, "sso-ida"), user.recovery_codes[0])
    assert again.status_code == 403 and not logged_in(hub, http2)


def test_totp_step_locks_the_account_after_repeated_failures(hub, idp, env):
    user = enrolled_user(env.settings, "sso-jon")
    http = requests.Session()
    page = idp_login(hub, idp, http, "sso-jon")
    right = totp_code(user.totp_secret)
    wrong = "123456" if right != "123456" else "654321"
    for _ in range(env.settings.auth.lockout_threshold):
        page = post_code(hub, http, page, wrong)
    locked = post_code(hub, http, page, right)
    assert locked.status_code == 403 and "locked" in locked.text
    assert not logged_in(hub, http)
    # and a new IdP login is refused before the code step while the lock lasts
    r = idp_login(hub, idp, requests.Session(), "sso-jon", amr=["mfa"])
    assert r.status_code == 403 and "locked" in r.text


def test_totp_page_without_an_idp_login_sends_the_person_back(hub):
    http = requests.Session()
    r = http.get(hub.url + "/hub/mfa", timeout=30)
    assert r.status_code == 403 and "missing or has expired" in r.text
    r = http.post(hub.url + "/hub/mfa", data={"otp": "123456"}, timeout=30)
    assert r.status_code == 403 and not logged_in(hub, http)


def test_idp_cancel_is_refused_with_a_message(hub, idp):
    http = requests.Session()
    r = idp_login(hub, idp, http, "sso-kim", deny=True)
    assert r.status_code == 400 and "did not sign in" in r.text
    assert not logged_in(hub, http)


def test_operator_flow_enrolment_without_password_then_sso_with_code(hub, idp, env):
    """`enclave user add` -> enrolment page (no password in SSO mode) -> IdP -> code -> home."""
    token = pending_user(env.settings, "sso-new")
    http = requests.Session()
    page = http.get(f"{hub.url}/hub/enrol/{token}", timeout=30)
    assert page.status_code == 200
    assert 'name="password"' not in page.text and "sign in with your institution" in page.text
    secret = re.search(r'id="totp-secret"[^>]*>([A-Z2-7]+)<', page.text).group(1)
    done = http.post(f"{hub.url}/hub/enrol/{token}", timeout=30,
                     data={"_xsrf": xsrf_from(page.text), "otp": totp_code(secret, offset_steps=-1)})
    assert done.status_code == 200 and "recovery codes" in done.text
    with db.transaction(env.db_url) as session:
        assert accounts.get(session, "sso-new").password_hash is None

    step = idp_login(hub, idp, http, "sso-new", amr=["pwd"])
    ok = post_code(hub, http, step, totp_code(secret))
    assert ok.url.startswith(hub.url + "/hub/home")
    me = http.get(hub.url + "/hub/api/user", timeout=30).json()
    assert me["name"] == "sso-new" and me["groups"] == ["researcher"] and me["admin"] is False


def test_password_form_post_cannot_bypass_the_code_step(hub, idp, env):
    """Even with a valid authorization code, only the OAuth callback may use it (it holds the TOTP step)."""
    enrolled_user(env.settings, "sso-lee")
    http = requests.Session()
    http.get(hub.url + "/hub/login", timeout=30)  # sets the _xsrf cookie, as for a browser
    idp.next_login("sub-sso-lee", "sso-lee", amr=["pwd"])
    start = http.get(hub.url + "/hub/oauth_login", allow_redirects=False, timeout=30)
    at_idp = http.get(start.headers["Location"], allow_redirects=False, timeout=30)
    callback = at_idp.headers["Location"]
    assert "code=" in callback
    r = http.post(hub.url + "/hub/login?" + callback.split("?", 1)[1], timeout=30,
                  data={"_xsrf": http.cookies["_xsrf"], "username": "sso-lee", "password": "x", "otp": "123456"})
    # refused by hub.auth.oidc (without its guard this request fails with a 500 deep in OAuthenticator);
    # JupyterHub re-renders the login page, whose SSO variant shows only the sign-in button
    assert r.status_code == 403 and "Sign in with your institution" in r.text
    assert not logged_in(hub, http)


def test_logout_forgets_a_half_done_login(hub, idp, env):
    enrolled_user(env.settings, "sso-max")
    http = requests.Session()
    step = idp_login(hub, idp, http, "sso-max", amr=["pwd"])
    assert step.url == hub.url + "/hub/mfa"
    http.get(hub.url + "/hub/logout", timeout=30)
    r = http.get(hub.url + "/hub/mfa", timeout=30)
    assert r.status_code == 403 and "missing or has expired" in r.text


def test_audit_chain_is_intact_after_the_sso_logins(hub, env):
    """Last in the module: every SSO event above went into one unbroken hash chain."""
    with db.transaction(env.db_url) as session:
        verdict = audit.verify(session)
    assert verdict.ok, str(verdict)
