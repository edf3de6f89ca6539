"""Admin pages: only admins get in; each action goes through the core services (refusals and audit
events as with the `enclave` command); an enrolment link is shown once and works; no data is shown."""

import json
import re

import pytest
from sqlalchemy import select

from enclave import db
from enclave.models import Account, AccountStatus, AuditEvent, Role

from tests.unit.admin.conftest import P, as_

ADA = as_("ada")


def _events(egress, action):
    with db.transaction(egress.url) as s:
        return [(e.actor, e.target, json.loads(e.detail)) for e in
                s.execute(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)).scalars()]


@pytest.mark.parametrize("who", ["ann", "sam", "ghost"])
def test_only_admins_get_in(client, who):
    for path in ("/people", "/projects", "/audit", "/projects/cardio", "/audit/export"):
        r = client.get(P + path, headers=as_(who))
        assert r.status_code == 403, (who, path)
    r = client.post(P + "/people", data={"username": "eve", "role": "admin"}, headers=as_(who))
    assert r.status_code == 403
    assert client.get(P + "/people").status_code == 401  # nobody logged in: sent to the login


def test_adding_a_person_shows_a_working_link_once(client, egress):
    r = client.post(P + "/people", data={"username": "rita", "role": "researcher", "email": "rita@localhost"},
                    headers=ADA)
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    link = re.search(r'value="(http[^"]+/hub/enrol/([^"]+))"', r.text)
    assert link
    with db.transaction(egress.url) as s:
        rita = s.execute(select(Account).where(Account.username == "rita")).scalar_one()
        assert rita.status == AccountStatus.pending and rita.email == "rita@localhost"
        from enclave.models import EnrolmentToken
        stored = [t.token_hash for t in s.execute(select(EnrolmentToken)).scalars()]
    assert link.group(2) not in stored  # only its hash is kept
    assert _events(egress, "user.add")[-1][:2] == ("ada", "rita")
    listed = client.get(P + "/people?q=rit", headers=ADA).text
    assert "rita" in listed and link.group(2) not in listed  # never shown again
    r = client.post(P + "/people", data={"username": "rita", "role": "researcher"}, headers=ADA)
    assert r.status_code == 409 and "already exists" in r.text


def test_disable_enable_reset_and_role_go_through_the_core_services(client, egress):
    assert "disabled" in client.post(P + "/people/bob/disable", headers=ADA).text
    with db.transaction(egress.url) as s:
        assert s.execute(select(Account.status).where(Account.username == "bob")).scalar_one() == AccountStatus.disabled
    r = client.post(P + "/people/bob/disable", headers=ADA)
    assert r.status_code == 400 and "already disabled" in r.text
    assert "enabled again (active)" in client.post(P + "/people/bob/enable", headers=ADA).text
    r = client.post(P + "/people/bob/reset-mfa", headers=ADA)
    assert r.status_code == 200 and "/hub/enrol/" in r.text
    r = client.post(P + "/people/bob/role", data={"role": "steward"}, headers=ADA)
    assert r.status_code == 400 and "member of other" in r.text  # a member must leave projects first
    r = client.post(P + "/people/sue/role", data={"role": "admin"}, headers=ADA)
    assert r.status_code == 200 and "&#39;sue&#39; is now a admin" in r.text
    with db.transaction(egress.url) as s:
        assert s.execute(select(Account.role).where(Account.username == "sue")).scalar_one() == Role.admin
    assert [a for a, *_ in _events(egress, "user.disable")] == ["ada"]
    for action in ("disable", "reset-mfa"):  # an admin does not lock themselves out from the page
        r = client.post(f"{P}/people/ada/{action}", headers=ADA)
        assert r.status_code == 400 and "your own account" in r.text
    r = client.post(P + "/people/ada/role", data={"role": "researcher"}, headers=ADA)
    assert r.status_code == 400 and "your own account" in r.text
    assert _events(egress, "user.role")[-1][2] == {"from": "steward", "to": "admin"}


def test_creating_a_project_and_adding_a_member(client, egress, tmp_path):
    data = tmp_path / "heart"
    data.mkdir()
    form = {"slug": "heart", "data_dir": str(data), "title": "Heart", "start": "2026-01-01", "end": "2027-06-30",
            "purpose": "Heart failure outcomes", "sponsor": "CHU", "approval": "MR-004", "min_cell_count": "11"}
    assert client.post(P + "/projects", data=form, headers=ADA).status_code == 200
    r = client.post(P + "/projects", data={**form, "slug": "bad", "data_dir": str(tmp_path / "none")}, headers=ADA)
    assert r.status_code == 400 and "does not exist" in r.text
    r = client.post(P + "/projects", data={**form, "slug": "later", "start": "2027-01-01", "end": "2026-01-01"},
                    headers=ADA)
    assert r.status_code == 400 and "before start date" in r.text
    assert client.post(P + "/projects/heart/members", data={"username": "ann"}, headers=ADA).status_code == 200
    r = client.post(P + "/projects/heart/members", data={"username": "sam"}, headers=ADA)
    assert r.status_code == 400 and "only researchers" in r.text
    page = client.get(P + "/projects/heart", headers=ADA).text
    assert "Heart failure outcomes" in page and "MR-004" in page and "Remove ann" in page
    created = _events(egress, "project.create")[-1]
    assert created[:2] == ("ada", "heart") and created[2]["purpose"] == "Heart failure outcomes"
    assert client.post(P + "/projects/heart/status", data={"status": "suspended"}, headers=ADA).status_code == 200
    assert 'id="project-status">suspended' in client.get(P + "/projects/heart", headers=ADA).text
    r = client.post(P + "/projects/heart/limits", data={"daily_mib": "50", "terminals": "off"}, headers=ADA)
    assert r.status_code == 200 and _events(egress, "project.guard_bounds")[-1][2] == {
        "guard_daily_mib": 50, "terminals": False}
    r = client.post(P + "/projects/heart/limits", data={"mem_limit": "8G", "cpu_limit": "2"}, headers=ADA)
    assert r.status_code == 200 and _events(egress, "project.container_limits")[-1][2] == {
        "mem_limit": "8G", "cpu_limit": 2.0}
    r = client.post(P + "/projects/heart/limits", data={"mem_limit": "a lot"}, headers=ADA)
    assert r.status_code == 400 and "not a memory size" in r.text
    assert "memory 8G, CPUs 2.0" in client.get(P + "/projects/heart", headers=ADA).text


def test_the_audit_log_is_searched_and_exported(client, egress):
    client.post(P + "/people/bob/disable", headers=ADA)
    r = client.get(P + "/audit?person=bob", headers=ADA)
    assert r.status_code == 200 and "user.disable" in r.text and "user.add" in r.text
    assert "project.create" not in r.text  # by or about bob only
    r = client.get(P + "/audit?action=user.dis", headers=ADA)
    assert "user.disable" in r.text and "project.create" not in r.text
    r = client.get(P + "/audit?project=cardio&action=project.", headers=ADA)
    assert "project.create" in r.text and "user.disable" not in r.text
    assert "chain verified" in client.get(P + "/audit/verify", headers=ADA).text
    r = client.get(P + "/audit/export?person=bob", headers=ADA)
    rows = [json.loads(line) for line in r.text.splitlines()]
    assert rows and all("bob" in (x["actor"], x["target"]) for x in rows)
    assert {"hash", "prev_hash", "seq"} <= set(rows[0])
    assert _events(egress, "audit.export")[-1][:1] == ("ada",)


def test_forms_from_elsewhere_are_refused(egress):
    """A cookie session needs the form's CSRF token: a page elsewhere cannot make an admin act."""
    from fastapi.testclient import TestClient

    from admin.app import create_app
    from egress_review.auth import Identity

    class CookieGate:
        async def identify(self, request):
            return Identity("ada", via_cookie=True, csrf="right-token")

        def login(self, request):
            raise AssertionError

    client = TestClient(create_app(egress.settings, gate=CookieGate()))
    r = client.post(P + "/people/bob/disable", data={"_csrf": "wrong"})
    assert r.status_code == 403
    r = client.post(P + "/people/bob/disable", data={"_csrf": "right-token"})
    assert r.status_code == 200
