"""Stewards see what notebooks sent toward browsers, largest first, and raise one person's cap for a
day (audited); researchers see neither, and only stewards raise."""

import json

from fastapi.testclient import TestClient

from enclave import clock, db, volumes
from enclave.models import AuditEvent, DailyVolume
from egress_review.app import create_app
from tests.support.egress_gate import HeaderGate

P = "/services/egress"
MIB = 2**20


def as_(name):
    return {"X-Egress-Test-User": name}


def test_volumes_page_outliers_on_top_and_a_stewards_raise(egress):
    today = clock.today()
    with db.transaction(egress.settings.database_url) as s:
        for user, n in (("bob", 1), ("ann", 90), ("sue", 2), ("ada", 1)):
            volumes.record(s, today, user, "cardio", n * MIB)
    client = TestClient(create_app(egress.settings, gate=HeaderGate()))
    page = client.get(f"{P}/volumes", headers=as_("sam"))
    assert page.status_code == 200
    order = [page.text.index(f"<td>{u}</td>") for u in ("ann", "sue", "bob")]
    assert order == sorted(order)  # largest first
    assert 'class="outlier"' in page.text and page.text.count('class="outlier"') == 1  # ann: 90 MiB vs a median of 1.5
    assert client.get(f"{P}/volumes", headers=as_("ann")).status_code == 403  # researchers: no

    form = {"user": "ann", "project": "cardio", "mib": "300", "reason": "final tables"}
    r = client.post(f"{P}/volumes/raise", data=form, headers=as_("ada"), follow_redirects=False)
    assert r.status_code == 403  # an admin administers; a steward decides what may leave
    r = client.post(f"{P}/volumes/raise", data={**form, "reason": " "}, headers=as_("sam"), follow_redirects=False)
    assert r.status_code == 400
    r = client.post(f"{P}/volumes/raise", data=form, headers=as_("sam"), follow_redirects=False)
    assert r.status_code == 303
    with db.transaction(egress.settings.database_url) as s:
        row = s.query(DailyVolume).filter_by(username="ann", project="cardio", day=today).one()
        assert row.raised_cap_mib == 300 and not row.capped
        event = s.query(AuditEvent).filter_by(action="notebook.egress_cap_raised").one()
        assert event.actor == "sam" and json.loads(event.detail)["reason"] == "final tables"
