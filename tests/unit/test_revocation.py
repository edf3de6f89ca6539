"""Which running notebook servers must stop because access ended, without Docker or a hub.

The decision is the start rule (enclave.permissions) applied to what the hub reports as running; the hub
side is replaced by a recording stand-in for `enclave.hubapi.HubAPI` (the module's one seam).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import socket

import pytest
from traitlets.config import Config

from enclave import access, accounts, db, projects
from enclave.hubapi import HubRefused, RunningServer
from enclave.models import AuditEvent, ProjectStatus
from enclave.settings import Settings, SettingsError

from hub.services import access_reconciler
from tests.conftest import BOTH
from tests.support.users import enrolled_user

TODAY = dt.date.today()


@pytest.fixture
def world(enclave_env, tmp_path):
    """ann and bob in 'open' (active); ann also in 'held' (suspended) and 'over' (ended yesterday);
    cyd is a disabled member of 'open'."""
    s = enclave_env.settings
    for name in ("ann", "bob", "cyd"):
        enrolled_user(s, name)
    data = tmp_path / "data"
    data.mkdir()
    with db.transaction(enclave_env.db_url) as session:
        projects.create(session, "test", "open", str(data))
        projects.create(session, "test", "held", str(data))
        projects.create(session, "test", "over", str(data), start=TODAY - dt.timedelta(days=30),
                        end=TODAY - dt.timedelta(days=1))
        for slug, user in (("open", "ann"), ("open", "bob"), ("open", "cyd"), ("held", "ann"), ("over", "ann")):
            projects.add_member(session, "test", slug, user)
        projects.set_status(session, "test", "held", ProjectStatus.suspended)
        accounts.disable(session, "test", "cyd")
    return enclave_env


def _running(user, name, ready=True, pending=None):
    return RunningServer(user, name, ready, pending)


def _decide(env, servers):
    with db.transaction(env.db_url) as session:
        return {(r.user, r.server): r for r in access.decide(session, servers, TODAY)}


@pytest.mark.parametrize("db_url", BOTH, indirect=True)
def test_only_servers_the_start_rules_now_refuse_are_chosen(world):
    servers = [
        _running("ann", "open"),  # allowed: keeps running
        _running("bob", "open"),  # allowed: keeps running
        _running("ann", "held"),  # project suspended
        _running("ann", "over"),  # end date passed
        _running("cyd", "open"),  # account disabled
        _running("bob", "held"),  # never (or no longer) a member
        _running("zed", "open"),  # not an enclave account at all
        _running("ann", ""),  # a default server: notebooks only run per project
        _running("ann", "gone"),  # project deleted from under it
    ]
    chosen = _decide(world, servers)
    assert {k: r.reason for k, r in chosen.items()} == {
        ("ann", "held"): "project_suspended",
        ("ann", "over"): "project_expired",
        ("cyd", "open"): "account_disabled",
        ("bob", "held"): "not_member",
        ("zed", "open"): "unknown_account",
        ("ann", ""): "no_project",
        ("ann", "gone"): "no_project",
    }
    assert "is suspended" in chosen[("ann", "held")].message
    assert not any(r.starting for r in chosen.values())


def test_removing_a_member_chooses_only_that_members_server(world):
    with db.transaction(world.db_url) as session:
        projects.remove_member(session, "test", "open", "bob")
    chosen = _decide(world, [_running("ann", "open"), _running("bob", "open")])
    assert list(chosen) == [("bob", "open")] and chosen[("bob", "open")].reason == "not_member"


def test_stopping_servers_are_left_alone_and_starting_ones_are_marked(world):
    chosen = _decide(world, [
        _running("ann", "held", ready=False, pending="stop"),
        _running("ann", "over", ready=False, pending="spawn"),
        _running("ann", "open", ready=False, pending="spawn"),  # allowed start in progress
    ])
    assert list(chosen) == [("ann", "over")] and chosen[("ann", "over")].starting


class FakeHub:
    """Stands in for enclave.hubapi.HubAPI: reports `servers`, records stops, may refuse some."""

    def __init__(self, servers, refuse=(), slow=()):
        self.servers = list(servers)
        self.refuse, self.slow = set(refuse), set(slow)
        self.stopped: list[tuple[str, str]] = []
        self.ended: list[tuple[str, str]] = []

    def running_servers(self):
        return [s for s in self.servers if (s.user, s.name) not in self.stopped]

    def end_sessions(self, user, reason, actor):
        self.ended.append((user, reason))
        return {"tokens": 1}

    def stop(self, user, name, wait=60.0):
        if (user, name) in self.refuse:
            raise HubRefused(f"DELETE /users/{user}/servers/{name}: HTTP 500 boom")
        self.stopped.append((user, name))
        return (user, name) not in self.slow


def _revoked_events(env):
    with db.transaction(env.db_url) as session:
        return [(e.actor, e.target, json.loads(e.detail))
                for e in session.query(AuditEvent).filter_by(action="notebook.revoked").order_by(AuditEvent.seq)]


@pytest.mark.parametrize("db_url", BOTH, indirect=True)
def test_a_pass_stops_and_audits_each_refused_server_and_survives_a_failed_stop(world):
    hub = FakeHub(
        [_running("ann", "open"), _running("ann", "held"), _running("cyd", "open"), _running("ann", "over")],
        refuse=[("ann", "held")], slow=[("ann", "over")],
    )
    outcome = access.reconcile(hub, world.db_url, "service:test")
    assert sorted(hub.stopped) == [("ann", "over"), ("cyd", "open")]
    assert [(r.user, r.server) for r in outcome.stopped] == [("cyd", "open")]
    assert [(r.user, r.server) for r in outcome.still_stopping] == [("ann", "over")]
    assert [(r.user, r.server) for r, _ in outcome.failed] == [("ann", "held")]
    events = _revoked_events(world)
    assert {(target, d["user"], d["reason"], d["stopped"]) for _, target, d in events} == {
        ("open", "cyd", "account_disabled", True), ("over", "ann", "project_expired", False),
    }
    assert {actor for actor, _, _ in events} == {"service:test"}
    with db.transaction(world.db_url) as session:
        from enclave import audit

        assert audit.verify(session).ok


def test_a_pass_can_be_limited_to_the_servers_a_change_affects(world):
    hub = FakeHub([_running("ann", "held"), _running("cyd", "open")])
    access.reconcile(hub, world.db_url, "cli:test", only=lambda s: s.name == "held")
    assert hub.stopped == [("ann", "held")]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_cli_ends_access_and_says_in_one_line_when_no_hub_runs(world, cli):
    # never started: no service token yet
    code, out, err = cli("project", "suspend", "open")
    assert code == 0 and err == ""
    assert out.splitlines() == [
        "project 'open' is now suspended",
        "hub not running: its access check stops affected notebook servers when it starts "
        "(no access-check token yet)",
    ]
    # started once (token kept), but nothing listens on its API port now
    access_reconciler.service_token(world.state_dir)
    from tests.support.hub import update_settings_file

    update_settings_file(world.config, {"hub": {"api_port": _free_port()}})
    for args, first in (
        (("project", "remove-member", "open", "bob"), "removed 'bob' from 'open'"),
        (("user", "disable", "ann"), "disabled 'ann'"),
        (("project", "close", "held"), "project 'held' is now closed"),
    ):
        code, out, err = cli(*args)
        assert code == 0 and err == "", (args, err)
        lines = out.splitlines()
        assert lines[:2] == [first, "hub not running: its access check stops affected notebook servers when it starts"], lines
        # closing also gives the project's Docker network back (this one never ran: nothing to remove)
        assert lines[2:] == (["project network enclave-held was already gone"] if args[1] == "close" else []), lines
    with db.transaction(world.db_url) as session:
        assert accounts.get(session, "ann").status.value == "disabled"
        assert projects.get(session, "held").status == ProjectStatus.closed
        assert [m.account.username for m in projects.get(session, "open").memberships] == ["ann", "cyd"]


def test_the_services_that_end_access_stop_and_end_what_they_must_whoever_calls_them(world, monkeypatch):
    """Not through the CLI: a web page or a script calling the service gets the same consequences."""
    hub = FakeHub([_running("ann", "open"), _running("bob", "open"), _running("ann", "held", ready=True)])
    hub.stopped = []
    monkeypatch.setattr(access, "local_api", lambda settings: hub)
    s, out = world.settings, io.StringIO()
    access.set_project_status(s, "web:admin", "held", ProjectStatus.active, out=out)  # resume: nothing stops
    assert hub.stopped == [] and hub.ended == []
    access.remove_member(s, "web:admin", "open", "bob", out=out)
    assert hub.stopped == [("bob", "open")] and hub.ended == [("bob", "not_member")]
    access.set_project_status(s, "web:admin", "held", ProjectStatus.suspended, out=out)
    assert hub.stopped[-1] == ("ann", "held")
    token = access.reset_mfa(s, "web:admin", "ann", out=out)
    assert token and hub.stopped[-1] == ("ann", "open") and hub.ended[-1] == ("ann", "mfa_reset")
    access.disable_account(s, "web:admin", "bob", out=out)
    assert hub.ended[-1] == ("bob", "account_disabled")
    events = _revoked_events(world)
    assert [(target, d["user"], d["reason"]) for _, target, d in events] == [
        ("open", "bob", "not_member"), ("held", "ann", "project_suspended"), ("open", "ann", "account_not_active")]
    assert {actor for actor, _, _ in events} == {"web:admin"}


def test_resume_does_not_ask_the_hub(world, cli):
    access_reconciler.service_token(world.state_dir)
    code, out, _ = cli("project", "resume", "held")
    assert code == 0 and out.splitlines() == ["project 'held' is now active"]


def test_configure_registers_the_service_with_its_token_and_a_minimal_role(tmp_path):
    s = Settings({"state_dir": str(tmp_path)})
    c = Config()
    c.JupyterHub.services = [{"name": "egress", "url": "http://127.0.0.1:9"}]
    c.JupyterHub.load_roles = [{"name": "idle-culler", "scopes": ["list:users"], "services": ["idle-culler"]}]
    access_reconciler.configure(c, s)
    access_reconciler.configure(c, s)  # idempotent
    assert [svc["name"] for svc in c.JupyterHub.services] == ["egress", "access-reconciler"]
    svc = c.JupyterHub.services[1]
    token_file = tmp_path / "secrets" / "access_reconciler_token"
    assert svc["api_token"] == token_file.read_text().strip() and len(svc["api_token"]) == 64
    assert oct(token_file.stat().st_mode & 0o777) == "0o600"
    assert svc["command"][1:] == ["-m", "hub.services.access_reconciler"]
    role = next(r for r in c.JupyterHub.load_roles if r["name"] == "access-reconciler")
    assert role == {"name": "access-reconciler", "scopes": ["list:users", "read:servers", "delete:servers",
                                                            "custom:enclave:end-sessions"],
                    "services": ["access-reconciler"]}
    assert [r["name"] for r in c.JupyterHub.load_roles] == ["idle-culler", "access-reconciler"]


@pytest.mark.parametrize("value", [0, 3601, -5])
def test_access_check_interval_out_of_range_is_refused(value):
    with pytest.raises(SettingsError, match="access_check_seconds must be between 1 and 3600"):
        Settings({"spawner": {"access_check_seconds": value}})
