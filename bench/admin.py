"""Admin pages' latency on a big enclave: 10,000 people, 1,000 projects (5 members each) and 1,000,000
audit events in the database (SQLite, the default).

The database is built once (the audit chain written with its real hashes, in bulk) and cached under
/var/tmp/enclave-bench/; each run copies it. The real admin app is served by uvicorn on loopback, the
caller named through `tests.support.egress_gate.HeaderGate` (the documented test seam). Each page is
asked for ROUNDS times after one warm-up; p50 and p95 in ms. Target (issue 19): p95 < 200 ms.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path

from bench._stats import pct
from bench.ingest import CACHE

PEOPLE, PROJECTS, EVENTS = 10_000, 1_000, 1_000_000
ROUNDS = 40
TARGET_MS = 200
FORMAT = 2  # bump when the seeded content changes


def _seed(url: str, data: Path) -> None:
    import datetime as dt

    from sqlalchemy import insert

    from enclave import audit, db
    from enclave.models import Account, AccountStatus, AuditEvent, AuditHead, Membership, Project, ProjectStatus, Role

    start = dt.datetime(2025, 1, 1)
    with db.transaction(url) as s:
        s.execute(insert(Account), [
            {"id": i + 1, "username": f"user{i:05d}", "role": Role.admin if i == 0 else
             (Role.steward if i % 50 == 1 else Role.researcher), "status": AccountStatus.active,
             "totp_last_counter": 0, "failed_logins": 0, "notify": "immediate", "created_at": start,
             "email": f"user{i:05d}@localhost", "totp_secret": b"enrolled", "enrolled_at": start}
            for i in range(PEOPLE)])
        s.execute(insert(Project), [
            {"id": j + 1, "slug": f"p{j:04d}", "title": f"Study {j}", "data_dir": str(data), "purpose": "",
             "sponsor": "", "approval": "", "status": ProjectStatus.active, "start_date": start.date(),
             "min_cell_count": 10, "created_at": start} for j in range(PROJECTS)])
        s.execute(insert(Membership), [
            {"project_id": j + 1, "account_id": 2 + (j * 5 + k) % (PEOPLE - 1), "added_at": start}
            for j in range(PROJECTS) for k in range(5)])
        prev, batch = audit.GENESIS, []
        actions = ["login.ok", "notebook.start", "egress.submit", "project.add_member", "data.import"]
        for seq in range(1, EVENTS + 1):
            ts = start + dt.timedelta(seconds=seq * 30)
            actor = f"user{seq % PEOPLE:05d}"
            action = actions[seq % len(actions)]
            target = f"p{seq % PROJECTS:04d}" if action != "login.ok" else actor
            detail = json.dumps({"n": seq}, separators=(",", ":"))
            digest = audit._digest(seq, audit._ts(ts), actor, action, target, detail, prev)
            batch.append({"seq": seq, "ts": ts, "actor": actor, "action": action, "target": target,
                          "detail": detail, "prev_hash": prev, "hash": digest})
            prev = digest
            if len(batch) == 50_000:
                s.execute(insert(AuditEvent), batch)
                batch = []
        if batch:
            s.execute(insert(AuditEvent), batch)
        s.add(AuditHead(id=1, seq=EVENTS, hash=prev))


def _database(work: Path) -> tuple[Path, float]:
    """A copy of the cached seeded database in `work` (built first if missing); seconds spent building."""
    from enclave import db

    cached = CACHE / f"admin-{FORMAT}-{PEOPLE}-{PROJECTS}-{EVENTS}.sqlite"
    built = 0.0
    if not cached.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        tmp = cached.with_suffix(".partial")
        tmp.unlink(missing_ok=True)
        db.migrate(f"sqlite:///{tmp}")
        _seed(f"sqlite:///{tmp}", CACHE)
        os.replace(tmp, cached)
        built = time.perf_counter() - t0
    target = work / "state" / "enclave.sqlite"
    target.parent.mkdir(parents=True)
    shutil.copyfile(cached, target)
    return target, built


def run() -> list[dict]:
    import httpx
    import uvicorn

    from enclave import db
    from enclave import settings as settings_mod

    from admin.app import create_app
    from tests.support.egress_gate import HeaderGate
    from tests.support.postgres import free_port

    with tempfile.TemporaryDirectory(prefix="bench-admin-", dir="/var/tmp") as tmp:
        tmp = Path(tmp)
        _, built = _database(tmp)
        s = settings_mod.Settings({"state_dir": str(tmp / "state")}, base_dir=tmp)
        db.migrate(s.database_url)  # the copy is current (a cached file from an older schema is upgraded)
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(create_app(s, gate=HeaderGate("/services/admin")),
                                               host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        b = f"admin pages: {PEOPLE:,} people, {PROJECTS:,} projects, {EVENTS:,} audit events"
        rows = [{"benchmark": b, "metric": "database built (cached after first run)", "value": built, "unit": "s",
                 "target": ""}]
        cases = [
            ("people, first page", "/people"),
            ("people, search by name", "/people?q=user0424"),
            ("people, researchers, page 100", "/people?role=researcher&page_no=100"),
            ("projects, first page", "/projects"),
            ("project detail (members, datasets)", "/projects/p0500"),
            ("audit log, newest", "/audit"),
            ("audit log, by person", "/audit?person=user04242"),
            ("audit log, by project", "/audit?project=p0500"),
            ("audit log, by action prefix", "/audit?action=data."),
            ("audit log, by project and action, older page", f"/audit?project=p0500&action=egress.&before={EVENTS // 2}"),
        ]
        try:
            headers = {HeaderGate.header: "user00000"}
            with httpx.Client(base_url=f"http://127.0.0.1:{port}/services/admin", timeout=60, headers=headers) as c:
                for name, path in cases:
                    r = c.get(path)
                    if r.status_code != 200:
                        raise RuntimeError(f"{path}: HTTP {r.status_code}: {r.text[:300]}")
                    ms = []
                    for _ in range(ROUNDS):
                        t0 = time.perf_counter()
                        c.get(path).raise_for_status()
                        ms.append((time.perf_counter() - t0) * 1000)
                    rows.append({"benchmark": b, "metric": f"{name} p50", "value": statistics.median(ms), "unit": "ms",
                                 "target": ""})
                    rows.append({"benchmark": b, "metric": f"{name} p95", "value": pct(ms, 95), "unit": "ms",
                                 "target": f"< {TARGET_MS}"})
        finally:
            server.should_exit = True
            thread.join(timeout=10)
        return rows


if __name__ == "__main__":
    for row in run():
        print(row)
