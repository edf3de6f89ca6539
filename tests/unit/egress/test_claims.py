"""Steward workload: claims, and the queue showing age, who claimed and who decided (never what)."""

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


@pytest.fixture
def rid(egress):
    egress.write("t.csv", SAFE_CSV)
    return egress.submit(paths=("t.csv",))


def test_claims_fill_the_room_then_others_are_told_who_has_it(client, egress, rid):
    assert client.post(f"{P}/api/requests/{rid}/claim", headers=as_("sam")).json()["claimed_by"] == ["sam"]
    assert client.post(f"{P}/api/requests/{rid}/claim", headers=as_("ada")).json()["claimed_by"] == ["sam", "ada"]
    r = client.post(f"{P}/api/requests/{rid}/claim", headers=as_("sue"))
    assert r.status_code == 409 and "already has the 2 reviewer(s) it needs: sam, ada" in r.json()["message"]
    [(fid, *_)] = egress.files(rid)
    r = client.post(f"{P}/api/files/{fid}/reviews", headers=as_("sue"), json={"decision": "approve"})
    assert r.status_code == 409 and "claimed by sam, ada" in r.json()["message"]
    page = client.get(f"{P}/requests/{rid}", headers=as_("sue")).text
    assert "claimed by sam, ada" in page and 'id="claim"' not in page
    # ada lets it go: sue may claim and decide
    assert client.post(f"{P}/api/requests/{rid}/unclaim", headers=as_("ada")).json()["claimed_by"] == ["sam"]
    assert client.post(f"{P}/api/requests/{rid}/claim", headers=as_("sue")).status_code == 200
    assert client.post(f"{P}/api/files/{fid}/reviews", headers=as_("sue"), json={"decision": "approve"}).status_code == 200


def test_the_queue_shows_age_claims_and_who_decided_not_what(client, egress, rid):
    client.post(f"{P}/api/requests/{rid}/claim", headers=as_("sam"))
    [(fid, *_)] = egress.files(rid)
    client.post(f"{P}/api/files/{fid}/reviews", headers=as_("sam"), json={"decision": "request_changes",
                                                                         "comment": "round to 5"})
    [row] = client.get(f"{P}/api/queue", headers=as_("sue")).json()["requests"]
    assert row["claimed_by"] == ["sam"] and row["decided_by"] == ["sam"] and 0 <= row["age_hours"] < 1
    page = client.get(f"{P}/queue", headers=as_("sue")).text
    assert "request_changes" not in page and "round to 5" not in page  # independence: who, never what


def test_who_may_not_claim(client, egress, rid):
    assert client.post(f"{P}/api/requests/{rid}/claim", headers=as_("ann")).status_code == 403  # the requester
    assert client.post(f"{P}/api/requests/{rid}/claim", headers=as_("bob")).status_code == 403  # a researcher
    r = client.post(f"{P}/api/requests/{rid}/unclaim", headers=as_("sue"))
    assert r.status_code == 409 and "have not claimed" in r.json()["message"]
    client.post(f"{P}/api/requests/{rid}/withdraw", headers=as_("ann"))
    assert client.post(f"{P}/api/requests/{rid}/claim", headers=as_("sam")).status_code == 409  # not in review
