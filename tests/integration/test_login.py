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
