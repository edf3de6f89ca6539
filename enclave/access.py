"""Notebook servers stop, and sessions end, when a person's access ends.

A running server keeps the project's data mounted, so it must not outlive the permission that let it
start. The rule is the start rule (`enclave.permissions.check_can_spawn`): a server whose (user, project)
would now be refused is stopped, and the stop is audited as `notebook.revoked` with the refusal's
reason code. Two callers run the same pass (`reconcile`):

- the `access-reconciler` JupyterHub service (`hub.services.access_reconciler`), every
  `[spawner] access_check_seconds`: catches end dates passing and anything changed while the hub was
  down (its first pass runs at hub start);
- the services at the end of this module, which own every change that ends access (suspending or
  closing a project, removing a member, disabling a person, resetting their MFA): each commits its
  change, then stops what must stop and ends sessions at once when the hub runs, whoever calls it
  (the `enclave` CLI only parses and prints).

Both authenticate with the service's API token (state_dir/secrets/access_reconciler_token, registered
by `configure`), whose role allows only listing users, reading and stopping servers.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from enclave import accounts, audit, clock, db, network, permissions, projects, secrets_store
from enclave.errors import PermissionDenied
from enclave.hubapi import HubAPI, HubRefused, HubUnavailable, RunningServer
from enclave.models import Account, Project, ProjectStatus, Role

SERVICE = "access-reconciler"
ACTOR = f"service:{SERVICE}"
TOKEN_FILE = "access_reconciler_token"

log = logging.getLogger(SERVICE)


@dataclass(frozen=True)
class Revocation:
    """A server that must stop, and why (the PermissionDenied a start would get now)."""

    user: str
    server: str
    reason: str
    message: str
    starting: bool = False  # a start in progress: stopped by the next pass once it is up


def decide(session: Session, servers: Iterable[RunningServer], today) -> list[Revocation]:
    """The servers among `servers` that the start rules now refuse; stopping ones are left alone."""
    servers = [s for s in servers if s.pending != "stop" and (s.ready or s.pending == "spawn")]
    names = {s.user for s in servers}
    slugs = {s.name for s in servers if s.name}
    found = session.execute(select(Account).where(Account.username.in_(sorted(names)))).scalars()
    accounts = {a.username: a for a in found}
    projects = {
        p.slug: p
        for p in session.execute(
            select(Project).where(Project.slug.in_(sorted(slugs))).options(selectinload(Project.memberships))
        ).scalars()
    }
    out = []
    for s in servers:
        try:
            permissions.check_can_spawn(accounts.get(s.user), projects.get(s.name), today)
        except PermissionDenied as exc:
            out.append(Revocation(s.user, s.name, exc.reason, exc.message, starting=not s.ready))
    return out


@dataclass
class Outcome:
    stopped: list[Revocation] = field(default_factory=list)
    still_stopping: list[Revocation] = field(default_factory=list)
    starting: list[Revocation] = field(default_factory=list)
    stopping_elsewhere: list[RunningServer] = field(default_factory=list)  # a stop already under way
    failed: list[tuple[Revocation, str]] = field(default_factory=list)


def reconcile(api: HubAPI, db_url: str, actor: str,
              only: Callable[[RunningServer], bool] | None = None) -> Outcome:
    """One pass: stop every running server (matching `only`) that may no longer run; audit each stop."""
    servers = [s for s in api.running_servers() if only is None or only(s)]
    outcome = Outcome(stopping_elsewhere=[s for s in servers if s.pending == "stop"])
    if not servers:
        return outcome
    with db.transaction(db_url) as session:
        revocations = decide(session, servers, clock.today())
    for rev in revocations:
        if rev.starting:
            outcome.starting.append(rev)
            continue
        try:
            done = api.stop(rev.user, rev.server)
        except (HubRefused, HubUnavailable) as exc:
            log.error("could not stop %s/%s (%s): %s", rev.user, rev.server, rev.reason, exc)
            outcome.failed.append((rev, str(exc)))
            continue
        with db.transaction(db_url) as session:
            audit.record(session, actor, "notebook.revoked", rev.server, {
                "user": rev.user, "reason": rev.reason, "message": rev.message, "stopped": done,
            })
        (outcome.stopped if done else outcome.still_stopping).append(rev)
    return outcome


# -- the CLI side ----------------------------------------------------------------------------------
def local_api(settings) -> HubAPI | None:
    """A client for this host's hub with the service token; None if no hub ever registered it."""
    path = secrets_store.secrets_dir(settings.state_dir) / TOKEN_FILE
    if not path.is_file():
        return None
    return HubAPI(f"http://127.0.0.1:{settings.hub.api_port}/hub/api", path.read_text().strip())


def stop_now(settings, actor: str, *, user: str | None = None, project: str | None = None,
             out=None) -> Outcome | None:
    """After a committed change that may end access: stop the affected servers now if the hub runs.

    Never raises for the hub's sake: the change is already made, and the service's next pass (or its
    first, when the hub starts) stops what this could not. Prints one line per server, or one line
    saying why nothing could be checked.
    """
    out = out or sys.stdout
    api = local_api(settings)
    at_start = "hub not running: its access check stops affected notebook servers when it starts"
    later = f"the hub's access check tries again within {settings.spawner.access_check_seconds} s"
    if api is None:
        print(f"{at_start} (no access-check token yet)", file=out)
        return None

    def affected(s: RunningServer) -> bool:
        return (user is None or s.user == user) and (project is None or s.name == project)

    try:
        outcome = reconcile(api, settings.database_url, actor, only=affected)
    except HubUnavailable:
        print(at_start, file=out)
        return None
    except HubRefused as exc:
        print(f"hub refused the access check ({exc}); {later}", file=out)
        return None
    for rev in outcome.stopped:
        print(f"stopped notebook server {rev.user}/{rev.server} ({rev.reason})", file=out)
    for rev in outcome.still_stopping:
        print(f"stopping notebook server {rev.user}/{rev.server} ({rev.reason})", file=out)
    for s in outcome.stopping_elsewhere:  # e.g. the service's pass got there first: return once it is gone
        try:
            state = "stopped" if api.wait_gone(s.user, s.name) else "stopping"
        except (HubUnavailable, HubRefused):
            state = "stopping"
        print(f"{state} notebook server {s.user}/{s.name} (its stop was already under way)", file=out)
    for rev in outcome.starting:
        print(f"notebook server {rev.user}/{rev.server} is starting; {later}", file=out)
    for rev, why in outcome.failed:
        print(f"could not stop notebook server {rev.user}/{rev.server}: {why}; {later}", file=out)
    return outcome


def end_access_now(settings, actor: str, user: str, reason: str, *, project: str | None = None, out=None) -> None:
    """After a committed change that ends a person's access: their servers (all, or the project's) stop
    and every hub cookie session and token of theirs ends (hub.auth.sessions), now if the hub runs."""
    out = out or sys.stdout
    stop_now(settings, actor, user=user, project=project, out=out)
    api = local_api(settings)
    if api is None:
        return
    try:
        done = api.end_sessions(user, reason, actor)
    except HubUnavailable:
        return  # stop_now said so; the hub's cookies were in its database, which it re-reads at start
    except HubRefused as exc:
        print(f"could not end the sessions of '{user}' ({exc}); they end at its next session re-check "
              f"({settings.auth.recheck_seconds} s) for cookies", file=out)
        return
    print(f"ended every session of '{user}' ({done.get('tokens', 0)} token(s) deleted, hub cookies invalid)", file=out)


# -- the changes that end access, each with everything that must follow it ---------------------------
# Each commits its change, then does what must follow; it says what it did, one line per step, on `out`.
def set_project_status(settings, actor: str, slug: str, status: ProjectStatus, *, out=None) -> None:
    """Suspend, close or resume a project. Suspended or closed: its servers stop now; closed: its
    Docker network is given back too."""
    out = out or sys.stdout
    with db.transaction(settings.database_url) as session:
        projects.set_status(session, actor, slug, status)
    print(f"project '{slug}' is now {status.value}", file=out)
    if status != ProjectStatus.active:
        stop_now(settings, actor, project=slug, out=out)
    if status == ProjectStatus.closed:
        release_project_network(settings, actor, slug, out=out)


def remove_member(settings, actor: str, slug: str, username: str, *, out=None) -> None:
    """Take a person out of a project: their server in it stops and their sessions end."""
    with db.transaction(settings.database_url) as session:
        projects.remove_member(session, actor, slug, username)
    print(f"removed '{username}' from '{slug}'", file=out or sys.stdout)
    end_access_now(settings, actor, username, "not_member", project=slug, out=out)


def disable_account(settings, actor: str, username: str, *, out=None) -> None:
    """Disable a person: every server of theirs stops and every session and token ends."""
    with db.transaction(settings.database_url) as session:
        accounts.disable(session, actor, username)
    print(f"disabled '{username}'", file=out or sys.stdout)
    end_access_now(settings, actor, username, "account_disabled", out=out)


def change_role(settings, actor: str, username: str, role: Role, *, out=None) -> None:
    """Give a person another role: their servers stop and their sessions end, so the new role's
    scopes apply from their next login."""
    with db.transaction(settings.database_url) as session:
        accounts.set_role(session, actor, username, role)
    print(f"'{username}' is now a {role.value}", file=out or sys.stdout)
    end_access_now(settings, actor, username, "role_changed", out=out)


def reset_mfa(settings, actor: str, username: str, *, out=None) -> str:
    """Forget a person's second factor; they enrol again with the returned link token. Their servers
    stop and their sessions end (a session opened with the old factor is not theirs to keep)."""
    with db.transaction(settings.database_url) as session:
        token = accounts.reset_mfa(session, actor, username, settings.auth.enrolment_valid_hours)
    end_access_now(settings, actor, username, "mfa_reset", out=out)
    return token


def release_project_network(settings, actor: str, slug: str, *, out=None) -> None:
    """A closed project gives its Docker network back (Docker's address pools are finite); audited."""
    import docker

    out = out or sys.stdout
    try:
        client = docker.from_env(timeout=30)
        client.ping()
    except Exception as exc:  # noqa: BLE001 - no engine here: the close itself is done
        print(f"project network not removed: no Docker engine answers ({type(exc).__name__})", file=out)
        return
    said = network.remove_project_network(client, settings.spawner.network_prefix, slug)
    with db.transaction(settings.database_url) as session:
        audit.record(session, actor, "project.network_released", slug, {"outcome": said})
    print(said, file=out)
