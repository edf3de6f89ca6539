"""Starts that must be refused, with the message the person sees, and the home page that explains them.

One real hub whose memory reserve is larger than this machine (real psutil, no mock): every start
that passes the permission rules is then refused for memory, so each rule shows its own message.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import re
from pathlib import Path

import pytest

from enclave import db
from enclave.models import AuditEvent, ProjectStatus

pytestmark = pytest.mark.integration


def _text(r) -> str:
    return re.sub(r"\s+", " ", html.unescape(r.text))


def test_refusals_show_why(site, enclave_env):
    ann, bob = site.user("ann"), site.user("bob")
    today = dt.date.today()
    active = site.project("act", members=[ann])
    suspended = site.project("sus", members=[ann], status=ProjectStatus.suspended)
    expired = site.project("exp", members=[ann], start=dt.date(2020, 1, 1), end=today - dt.timedelta(days=1))
    future = site.project("fut", members=[ann], start=today + dt.timedelta(days=30))
    bobs = site.project("bob", members=[bob])

    with site.hub(memory_reserve="64 TiB") as hub:
        http = site.login(hub, ann)
        cases = [
            (bobs, 403, f"You are not a member of project '{bobs}'"),
            (suspended, 403, f"Project '{suspended}' is suspended"),
            (expired, 403, f"Project '{expired}' ended on {(today - dt.timedelta(days=1)).isoformat()}"),
            (future, 403, f"Project '{future}' starts on"),
            (active, 503, "The enclave is too busy to start another notebook right now"),
            ("nosuchproject", 403, "There is no such project"),
        ]
        for slug, status, message in cases:
            r = site.request_start(hub, http, ann, slug)
            assert r.status_code == status, (slug, r.status_code, _text(r)[-600:])
            assert message in _text(r), (slug, _text(r)[-1500:])
            assert site.server_model(hub, http, ann, slug) is None  # nothing left running or pending
        assert "64.0 TiB must stay free" in _text(site.request_start(hub, http, ann, active))

        # the home page lists ann's projects (not bob's), with start only where it may work
        home = http.get(f"{hub.url}/hub/home", timeout=30)
        page = _text(home)
        assert home.status_code == 200
        for slug in (active, suspended, expired, future):
            assert f'data-project="{slug}"' in home.text
        assert bobs not in home.text
        assert f"/hub/spawn/{ann.username}/{active}" in home.text
        assert f"/hub/spawn/{ann.username}/{suspended}" not in home.text
        assert f"Project '{suspended}' is suspended" in page
        assert f"Project '{expired}' ended on" in page

        # a person with no project is told what to do
        other = site.login(hub, site.user("cyd"))
        assert "You are not a member of any project yet" in _text(other.get(f"{hub.url}/hub/home", timeout=30))

    assert not site.docker.containers.list(all=True, filters={"label": f"org.enclave.user={ann.username}"})
    with db.transaction(enclave_env.db_url) as s:
        reasons = [json.loads(e.detail)["reason"] for e in s.query(AuditEvent).filter_by(action="notebook.refused")]
    assert {"not_member", "project_suspended", "project_expired", "project_not_started",
            "memory_reserve", "no_project"} <= set(reasons)
    with db.transaction(enclave_env.db_url) as s:  # nothing refused had run, so no stop is recorded
        assert s.query(AuditEvent).filter_by(action="notebook.stop").count() == 0


def test_a_fault_on_the_host_is_refused_the_same_way_and_audited(site, enclave_env):
    """Not the person's doing (the project's data folder is gone): a 500 whose message says to tell an
    administrator, through the same audited refusal path as every other refusal."""
    ann = site.user("ann")
    slug = site.project("gone", members=[ann])
    with db.transaction(enclave_env.db_url) as s:
        from enclave import projects

        data_dir = projects.get(s, slug).data_dir
    for f in Path(data_dir).iterdir():
        f.unlink()
    Path(data_dir).rmdir()
    with site.hub() as hub:
        http = site.login(hub, ann)
        r = site.request_start(hub, http, ann, slug)
        assert r.status_code == 500, (r.status_code, _text(r)[-600:])
        assert f"The data folder of project '{slug}' is missing on the host; tell an administrator." in _text(r)
        assert site.server_model(hub, http, ann, slug) is None
    with db.transaction(enclave_env.db_url) as s:
        refused = [json.loads(e.detail) for e in s.query(AuditEvent).filter_by(action="notebook.refused", target=slug)]
    assert [(d["reason"], d["status"]) for d in refused] == [("data_missing", 500)]
