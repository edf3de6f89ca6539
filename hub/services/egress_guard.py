"""The egress guard: a JupyterHub managed service (root, like the hub) that keeps the record of what
notebook servers send toward people and enforces the daily cap, with the guard's HTTP proxy beside it.

`configure` (at hub start) installs the kernel meter (hub.guard.meter), writes HAProxy's configuration
(hub.guard.proxy) and registers two services: `guard-proxy` (HAProxy) and `egress-guard` (this loop).
Every `[guard] sample_seconds` the loop:

- reads the kernel's counters and moves what each server sent into the person's daily volume
  (hub.guard.ledger: `notebook.egress_volume` every `record_seconds`, `notebook.egress_slowed` once
  the burst is spent);
- stops, through the hub's API, any server whose person has reached today's cap in its project
  (`notebook.egress_cap_reached`; the kernel quota already drops its traffic); a start is then refused
  with a message saying how to ask for more (enclave.volumes.check_within_cap);
- gives running servers a new kernel quota after a steward's raise or at a new day;
- writes each refusal the proxy logged (UDP syslog on loopback) as `notebook.download_refused`
  with `by: host`, at most a few per server and kind a minute (the rest counted in the next one).
"""

from __future__ import annotations

import logging
import re
import secrets
import socket
import sys
import time
from collections import defaultdict

from sqlalchemy import select

from enclave import audit, clock, db, notify, secrets_store, volumes
from enclave.hubapi import HubAPI, HubRefused, HubUnavailable
from enclave.models import GuardedServer, Project, Role

from hub.guard import ledger, proxy
from hub.guard.meter import Meter
from hub.hubconfig import register_service
from hub.services import start

SERVICE = "egress-guard"
ACTOR = ledger.ACTOR
TOKEN_FILE = "egress_guard_token"
SCOPES = ["list:users", "read:servers", "delete:servers"]
QUOTA_SLACK = 64 * 1024  # a kernel quota this close to the wanted one is left alone
REFUSALS_PER_MINUTE = 5  # audit events per (server, kind) a minute; the rest are counted
_LOG_LINE = re.compile(r"enclave-guard refused=(\S+) status=(\d+) size=(\S+) path=/user/([^/\s]+)/([^/\s]+)(\S*)")

log = logging.getLogger(SERVICE)


def warn(message: str) -> None:
    print(f"enclave: WARNING {message}", file=sys.stderr)


def configure(c, s) -> None:
    g = s.guard
    if not g.enabled:
        Meter(g.nft_table, s.spawner.bridge_prefix).remove()  # no fail-closed table left to cut servers off
        warn("[guard] enabled = false: what notebooks send toward browsers is neither bounded nor recorded "
             "by the host, and downloads are refused only inside the researcher's container")
        return
    meter = Meter(g.nft_table, s.spawner.bridge_prefix)
    meter.install()
    files = proxy.files_for(s.state_dir)
    proxy.write_config(files, g.proxy_port, g.log_port, g.contents_read_mib * volumes.MIB,
                       f"{s.public_url}/services/egress/")
    register_service(c, s, proxy.service_spec(files))
    token = secrets_store.ensure_file(s.state_dir, TOKEN_FILE, lambda: secrets.token_hex(32).encode()).decode().strip()
    register_service(c, s, {"name": SERVICE, "command": [sys.executable, "-m", "hub.services.egress_guard"],
                            "api_token": token}, SCOPES)


class Guard:
    """One pass at a time over the guarded servers (the loop's state: what was stopped, refusals seen)."""

    def __init__(self, settings, api: HubAPI, meter: Meter):
        self.s, self.api, self.meter = settings, api, meter
        self.stopping: set[str] = set()
        self.refusals: dict[tuple, list] = defaultdict(lambda: [0.0, 0, 0])  # key -> [window start, written, held]

    def sample(self) -> list[tuple[str, str]]:
        """Settle every guarded server; returns the (user, server) pairs it asked the hub to stop."""
        g = self.s.guard
        readings = self.meter.read()
        to_stop = []
        with db.transaction(self.s.database_url) as session:
            rows = session.execute(select(GuardedServer)).scalars().all()
            projects = {p.slug: p for p in session.execute(
                select(Project).where(Project.slug.in_(sorted({r.project for r in rows})))).scalars()}
            for row in rows:
                reading, project = readings.get(row.key), projects.get(row.project)
                if reading is None or project is None:
                    continue
                bounds = volumes.bounds_for(project, g)
                settled = ledger.settle(session, row, reading.sent, reading.held_back,
                                        record_seconds=g.record_seconds, burst_bytes=bounds.burst_bytes)
                today = clock.today()
                limit = volumes.cap(session, today, row.username, project, g)
                if reading.cap_reached or settled.today_bytes >= limit:
                    volumes.mark_capped(session, today, row.username, row.project)
                    if row.key not in self.stopping:
                        self.stopping.add(row.key)
                        to_stop.append((row, settled.today_bytes, limit))
                    continue
                wanted = reading.cap_used + (limit - settled.today_bytes)
                if abs(wanted - row.cap_bytes) > QUOTA_SLACK:  # a raise, or a new day
                    self.meter.set_cap(row.key, row.ip, wanted, reading.cap_used)
                    row.cap_bytes = wanted
            stops = [(r.username, r.project, r.key, today_bytes, limit) for r, today_bytes, limit in to_stop]
        done = []
        for user, project, key, today_bytes, limit in stops:
            try:
                self.api.stop(user, project, wait=0)
            except (HubRefused, HubUnavailable) as exc:
                log.error("could not stop %s/%s at its daily cap: %s", user, project, exc)
                self.stopping.discard(key)
                continue
            with db.transaction(self.s.database_url) as session:
                audit.record(session, ACTOR, "notebook.egress_cap_reached", project, {
                    "user": user, "today_bytes": today_bytes, "cap_bytes": limit})
                notify.queue(session, notify.people_with_role(session, [Role.admin, Role.steward]),
                             "guard.cap_reached", f"Daily cap reached in project {project}",
                             f"The host guard stopped {user}'s notebook server in project {project}: it sent "
                             f"{today_bytes // volumes.MIB} MiB today, the daily cap. A steward may raise the "
                             "cap for today on the volumes page.", "/services/egress/volumes")
            done.append((user, project))
        live = {k for k in readings}
        self.stopping &= live
        return done

    def refused(self, line: str, now: float | None = None) -> bool:
        """Audit one refusal the proxy logged; False for a line that is not one."""
        m = _LOG_LINE.search(line)
        if not m or m.group(1) in ("-", ""):
            return False
        kind, status, size, user, server, rest = m.groups()
        now = time.monotonic() if now is None else now
        slot = self.refusals[(user, server, kind)]
        if now - slot[0] >= 60:
            slot[:] = [now, 0, slot[2]]
        if slot[1] >= REFUSALS_PER_MINUTE:
            slot[2] += 1
            return True
        slot[1] += 1
        held, slot[2] = slot[2], 0
        with db.transaction(self.s.database_url) as session:
            audit.record(session, ACTOR, "notebook.download_refused", server, {
                "user": user, "kind": kind, "status": int(status), "path": (f"/{rest.lstrip('/')}")[:300],
                "by": "host", "not_recorded_before": held, **({"size": int(size)} if size.isdigit() else {})})
        return True


def run_forever(guard: Guard, log_port: int) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", log_port))
    sock.settimeout(0.2)
    next_sample = 0.0
    while True:
        try:
            data = sock.recv(8192)
            guard.refused(data.decode(errors="replace"))
        except socket.timeout:
            pass
        except Exception:  # noqa: BLE001 - a bad line must not end the guard
            log.exception("could not record a refusal")
        if time.monotonic() >= next_sample:
            next_sample = time.monotonic() + guard.s.guard.sample_seconds
            try:
                for user, server in guard.sample():
                    log.info("stopped %s/%s: daily cap reached", user, server)
            except HubUnavailable as exc:
                log.info("%s", exc)
            except Exception:  # noqa: BLE001 - a bad pass must not end the guard
                log.exception("guard pass failed")


def main() -> int:
    s, api = start("python -m hub.services.egress_guard", SERVICE, __doc__.splitlines()[0])
    guard = Guard(s, api, Meter(s.guard.nft_table, s.spawner.bridge_prefix))
    log.info("guarding notebook servers: reading the host's counters every %s s", s.guard.sample_seconds)
    try:
        run_forever(guard, s.guard.log_port)
    except KeyboardInterrupt:
        log.info("stopping")
    return 0


if __name__ == "__main__":
    sys.exit(main())
