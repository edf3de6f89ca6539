"""The app's single error handler: refusals become a page for people and JSON for the API."""

import pytest
from fastapi.testclient import TestClient

from egress_review.app import create_app
from tests.support.egress_gate import HeaderGate
from tests.unit.egress.conftest import SAFE_CSV

P = "/services/egress"


@pytest.fixture
def client(egress):
    return TestClient(create_app(egress.settings, gate=HeaderGate()))


def as_(name):
    return {"X-Egress-Test-User": name}


def test_refusals_as_json_and_as_pages(client, egress):
    r = client.get(f"{P}/api/queue", headers=as_("ann"))
    assert r.status_code == 403 and r.json() == {"error": "not_reviewer", "message": r.json()["message"]}
    r = client.get(f"{P}/queue", headers=as_("ann"))
    assert r.status_code == 403 and "text/html" in r.headers["content-type"]
    assert "review queue is for output checkers" in r.text
    r = client.get(f"{P}/api/requests/999", headers=as_("sam"))
    assert r.status_code == 404 and "no release request 999" in r.json()["message"]
    r = client.get(f"{P}/api/me", headers=as_("ghost"))
    assert r.status_code == 403 and r.json()["error"] == "no_account"
    assert client.get(f"{P}/api/me").status_code == 401


def test_security_headers_and_openapi(client):
    r = client.get(f"{P}/api/openapi.json")
    assert r.status_code == 200 and f"{P}/api/queue" in r.json()["paths"]
    assert "frame-ancestors 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"


def test_submit_and_queue_through_the_app(client, egress):
    egress.write("t.csv", SAFE_CSV)
    body = {"project": "cardio", "groups": [{"name": "g", "context": "c", "controls": "k", "paths": ["t.csv"]}]}
    r = client.post(f"{P}/api/requests", json=body, headers=as_("ann"))
    assert r.status_code == 201, r.text
    q = client.get(f"{P}/api/queue?status=submitted", headers=as_("sam")).json()
    assert q["total"] == 1 and q["requests"][0]["can_review"] is True
    page = client.get(f"{P}/queue?status=submitted", headers=as_("sam"))
    assert page.status_code == 200 and f'{P}/requests/{r.json()["id"]}' in page.text
    assert client.get(f"{P}/queue?status=bogus", headers=as_("sam")).status_code == 400


def test_the_service_as_started_ignores_the_test_header(egress):
    """`python -m egress_review` builds the app with the hub's OAuth gate: naming a user in a header
    gets nobody in (the header-trusting gate exists only under tests/)."""
    real = TestClient(create_app(egress.settings))
    r = real.get(f"{P}/api/me", headers=as_("ann"))
    assert r.status_code == 401 and r.json()["error"] == "login_required"
    assert not any("HeaderGate" in name for name in dir(__import__("egress_review.auth").auth))
