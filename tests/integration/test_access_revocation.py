"""A running notebook server stops when its person's access ends (real hub, real containers).

Two hubs, because the two paths need different check intervals: with a one-hour interval only the
start-up pass runs, so every stop in the first test is the CLI's own (immediate) one; the second test
uses a one-second interval to show the periodic pass noticing an end date that has passed.
"""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest

from enclave import audit, db, projects
from enclave.hubapi import HubAPI
from enclave.models import AuditEvent

from hub.services import access_reconciler

pytestmark = pytest.mark.integration


def _hub_api(hub, env) -> HubAPI:
    """The hub's own account of running servers, read with the access-reconciler's token."""
    return HubAPI(f"http://127.0.0.1:{hub.api_port}/hub/api", access_reconciler.service_token(env.state_dir))


def _containers(site, user, slug, *, running_only=False) -> list:
    return site.docker.containers.list(
        all=not running_only,
        filters={"label": [f"org.enclave.project={slug}", f"org.enclave.user={user.username}"]},
    )


def _assert_stopped(site, api, user, slug) -> None:
    """Stopped now (hub and Docker agree), and its container (with the data mount) removed."""
    assert api.server(user.username, slug) is None, f"{user.username}/{slug}: hub still reports it"
    assert _containers(site, user, slug, running_only=True) == [], f"{user.username}/{slug}: still running"
    # Docker 20.10 may list a container for a moment after its removal returned.
    deadline = time.monotonic() + 10
    while _containers(site, user, slug) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _containers(site, user, slug) == [], f"{user.username}/{slug}: container not removed"


def _assert_running(site, api, user, slug) -> None:
    assert site.container(user, slug).status == "running"
    assert (api.server(user.username, slug) or {}).get("ready"), f"{user.username}/{slug}: hub says not ready"


def _revocations(env) -> set[tuple[str, str, str, str]]:
    with db.transaction(env.db_url) as s:
        assert audit.verify(s).ok
        return {
            (e.actor, e.target, json.loads(e.detail)["user"], json.loads(e.detail)["reason"])
            for e in s.query(AuditEvent).filter_by(action="notebook.revoked")
        }


def test_cli_changes_that_end_access_stop_running_servers_at_once(site, enclave_env, cli):
    ann, bob, cyd = site.user("ann"), site.user("bob"), site.user("cyd")
    study_a = site.project("a", members=[ann])
    study_b = site.project("b", members=[bob, cyd])

    with site.hub(access_check_seconds=3600) as hub:
        api = _hub_api(hub, enclave_env)
        for user, slug in ((ann, study_a), (bob, study_b), (cyd, study_b)):
            site.start_server(hub, site.login(hub, user), user, slug)

        code, out, err = cli("project", "suspend", study_a)
        assert code == 0, err
        assert f"stopped notebook server {ann.username}/{study_a} (project_suspended)" in out
        _assert_stopped(site, api, ann, study_a)

        code, out, err = cli("project", "remove-member", study_b, bob.username)
        assert code == 0, err
        assert f"stopped notebook server {bob.username}/{study_b} (not_member)" in out
        _assert_stopped(site, api, bob, study_b)
        _assert_running(site, api, cyd, study_b)  # the other member of the same project works on

        code, out, err = cli("user", "disable", cyd.username)
        assert code == 0, err
        assert f"stopped notebook server {cyd.username}/{study_b} (account_disabled)" in out
        _assert_stopped(site, api, cyd, study_b)

    actors = {actor for actor, *_ in _revocations(enclave_env)}
    assert {event[1:] for event in _revocations(enclave_env)} == {
        (study_a, ann.username, "project_suspended"),
        (study_b, bob.username, "not_member"),
        (study_b, cyd.username, "account_disabled"),
    }
    assert len(actors) == 1 and actors.pop().startswith("cli:")


def test_periodic_check_stops_a_server_once_its_project_has_ended(site, enclave_env):
    dan = site.user("dan")
    today = dt.date.today()
    ending = site.project("end", members=[dan], end=today + dt.timedelta(days=30))
    ongoing = site.project("on", members=[dan])

    with site.hub(access_check_seconds=1) as hub:
        api = _hub_api(hub, enclave_env)
        http = site.login(hub, dan)
        site.start_server(hub, http, dan, ending)
        site.start_server(hub, http, dan, ongoing)

        # The calendar moving past the end date (no command moves an end date backwards).
        with db.transaction(enclave_env.db_url) as s:
            projects.get(s, ending).end_date = today - dt.timedelta(days=1)

        deadline = time.monotonic() + 60
        while _containers(site, dan, ending) and time.monotonic() < deadline:
            time.sleep(0.5)
        _assert_stopped(site, api, dan, ending)
        time.sleep(3)  # several more passes
        _assert_running(site, api, dan, ongoing)

    assert _revocations(enclave_env) == {("service:access-reconciler", ending, dan.username, "project_expired")}
