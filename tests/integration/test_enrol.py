"""The enrolment page at /hub/enrol/<token> on a real hub: what a new user sees and does."""

from __future__ import annotations

import datetime as dt
import html
import re

import pyotp
import requests

from enclave import db
from enclave.models import Account, AccountStatus, AuditEvent, EnrolmentToken

from tests.support.fixtures import running_hub  # noqa: F401
from tests.support.hub import xsrf_from
from tests.support.users import EnrolledUser, pending_user, totp_code

_SECRET_RE = re.compile(r'id="totp-secret"[^>]*>([A-Z2-7]+)<')


def _account(env, name="ann") -> Account:
    with db.transaction(env.db_url) as s:
        acc = s.query(Account).filter_by(username=name).one()
        s.expunge(acc)
        return acc


def test_enrol_happy_path_then_login(enclave_env, running_hub):
    token = pending_user(enclave_env.settings, "ann")
    http = requests.Session()
    url = f"{running_hub.url}/hub/enrol/{token}"
    page = http.get(url, timeout=30)
    assert page.status_code == 200
    secret = _SECRET_RE.search(page.text).group(1)
    assert "<svg" in page.text and "<path" in page.text  # QR code drawn inline, no external image
    assert 'name="password_confirm"' in page.text and 'name="otp"' in page.text
    assert _SECRET_RE.search(http.get(url, timeout=30).text).group(1) == secret  # a reload shows the same key
    assert secret.encode() not in (_account(enclave_env).totp_secret or b"")  # stored encrypted

    password = "correct horse battery"
    # a mismatch is explained and changes nothing
    bad = http.post(url, data={"_xsrf": xsrf_from(page.text), "password": password,
                               "password_confirm": password + "!", "otp": totp_code(secret)}, timeout=30)
    assert bad.status_code == 400
    assert "The two passwords differ" in html.unescape(bad.text)
    assert _account(enclave_env).status == AccountStatus.pending
    # too short, and a wrong code
    short = http.post(url, data={"_xsrf": xsrf_from(bad.text), "password": "short", "password_confirm": "short",
                                 "otp": totp_code(secret)}, timeout=30)
    assert "at least 12 characters" in html.unescape(short.text)
    wrong = f"{(int(totp_code(secret)) + 7) % 1000000:06d}"
    nope = http.post(url, data={"_xsrf": xsrf_from(short.text), "password": password, "password_confirm": password,
                                "otp": wrong}, timeout=30)
    assert nope.status_code == 400 and "That code does not match" in html.unescape(nope.text)
    assert _account(enclave_env).status == AccountStatus.pending

    done = http.post(url, data={"_xsrf": xsrf_from(nope.text), "password": password, "password_confirm": password,
                                "otp": totp_code(secret, -1)}, timeout=60)
    assert done.status_code == 200, done.text[-2000:]
    codes = re.findall(r"<code>([a-z0-9]{5}-[a-z0-9]{5})</code>", done.text.split('id="recovery-codes"', 1)[1])
    assert len(codes) == 10
    assert _account(enclave_env).status == AccountStatus.active
    with db.transaction(enclave_env.db_url) as s:
        assert s.query(AuditEvent).filter_by(action="user.enrol", target="ann").count() == 1

    # the link is spent; the new account logs in with what it chose
    again = http.get(url, timeout=30)
    assert again.status_code == 410 and "already been used" in html.unescape(again.text)
    assert token not in running_hub.logs()  # the link never appears in the hub's log
    user = EnrolledUser("ann", password, secret, codes)
    r = running_hub.login(requests.Session(), user)
    assert r.url.startswith(running_hub.url + "/hub/home"), r.url


def test_post_without_xsrf_is_refused(enclave_env, running_hub):
    token = pending_user(enclave_env.settings, "ann")
    url = f"{running_hub.url}/hub/enrol/{token}"
    r = requests.post(url, data={"password": "x" * 14, "password_confirm": "x" * 14, "otp": "123456"}, timeout=30)
    assert r.status_code == 403
    assert _account(enclave_env).status == AccountStatus.pending


def test_unknown_and_expired_links(enclave_env, running_hub):
    r = requests.get(f"{running_hub.url}/hub/enrol/not-a-real-token", timeout=30)
    assert r.status_code == 404 and "This enrolment link is not valid" in html.unescape(r.text)
    token = pending_user(enclave_env.settings, "bob")
    with db.transaction(enclave_env.db_url) as s:
        for row in s.query(EnrolmentToken).all():
            row.expires_at = row.expires_at - dt.timedelta(hours=100)
    r = requests.get(f"{running_hub.url}/hub/enrol/{token}", timeout=30)
    assert r.status_code == 410 and "This enrolment link has expired" in html.unescape(r.text)
    assert _account(enclave_env, "bob").totp_secret is None  # nothing was created for an expired link


def test_sso_enrolment_asks_only_for_the_code(enclave_env):
    """With [oidc] enabled the IdP checks the password: the page asks for the TOTP only."""
    from hub.auth import enrolment

    enclave_env.settings.oidc.enabled = True
    token = pending_user(enclave_env.settings, "ann")
    with db.transaction(enclave_env.db_url) as s:
        view = enrolment.start(s, enclave_env.settings, token)
    assert view.needs_password is False
    with db.transaction(enclave_env.db_url) as s:
        codes = enrolment.complete(s, enclave_env.settings, token,
                                   otp=pyotp.TOTP(view.secret).now())
    assert len(codes) == 10
    acc = _account(enclave_env)
    assert acc.status == AccountStatus.active and acc.password_hash is None
