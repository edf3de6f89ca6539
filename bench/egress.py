"""Review queue latency with 10,000 release requests in the database (target p95 < 200 ms).

Measured against the FastAPI app itself, served by uvicorn on loopback in this process, with the caller
named through `tests.support.egress_gate.HeaderGate` (the documented test seam: it trusts a header and is only
ever constructed by code like this, never by `python -m egress_review`). So the figures exclude the
hub's proxy hop and the OAuth token check (cached by HubOAuth for 60 s in production). The database is
SQLite (the default); the 10,000 requests (3 files each) are bulk-inserted rows, since the benchmark is
about reading the queue, not about submitting.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path

REQUESTS = 10_000
SAMPLES = 200
TARGET_MS = 200


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _seed(url: str, data_dir: Path) -> None:
    from sqlalchemy import insert

    from enclave import db, projects
    from enclave.models import Account, AccountStatus, Role

    from egress_review.models import FileGroup, ReleaseRequest, RequestFile

    with db.transaction(url) as s:
        for name, role in [("sam", Role.steward), ("ann", Role.researcher)]:
            s.add(Account(username=name, role=role, status=AccountStatus.active, totp_last_counter=0,
                          failed_logins=0))
        for i in range(10):
            projects.create(s, "bench", f"p{i}", str(data_dir))
    rng = random.Random(1)
    statuses = ["submitted", "under_review", "changes_requested", "released", "rejected", "withdrawn"]
    base = dt.datetime(2026, 1, 1)
    verdict = json.dumps({"file": "t.csv", "status": "pass", "kind": "table", "findings": []})
    reqs, groups, files = [], [], []
    for i in range(1, REQUESTS + 1):
        t = base + dt.timedelta(minutes=i)
        reqs.append({"id": i, "project": f"p{i % 10}", "requester": "ann", "status": rng.choice(statuses),
                     "created_at": t, "updated_at": t, "reviewers_required": 2})
        groups.append({"id": i, "request_id": i, "name": "tables", "context": "counts", "controls": "none"})
        for j in range(3):
            files.append({"group_id": i, "path": f"out/t{j}.csv", "version": 1, "sha256": f"{i:032x}{j:032x}",
                          "size": 100, "verdict": verdict, "check_status": "pass", "status": "pending",
                          "created_at": t})
    with db.transaction(url) as s:
        s.execute(insert(ReleaseRequest), reqs)
        s.execute(insert(FileGroup), groups)
        s.execute(insert(RequestFile), files)


def _measure(client, path: str, user: str) -> list[float]:
    for _ in range(10):
        client.get(path, headers={"X-Egress-Test-User": user}).raise_for_status()
    out = []
    for _ in range(SAMPLES):
        t0 = time.perf_counter()
        r = client.get(path, headers={"X-Egress-Test-User": user})
        out.append((time.perf_counter() - t0) * 1000)
        r.raise_for_status()
    return out


def run() -> list[dict]:
    import httpx
    import uvicorn

    from enclave import db
    from enclave import settings as settings_mod

    from egress_review.app import create_app
    from tests.support.egress_gate import HeaderGate

    with tempfile.TemporaryDirectory(prefix="bench-egress-") as tmp:
        tmp = Path(tmp)
        (tmp / "data").mkdir()
        s = settings_mod.Settings({"state_dir": str(tmp / "state")}, base_dir=tmp)
        db.migrate(s.database_url)
        t0 = time.perf_counter()
        _seed(s.database_url, tmp / "data")
        seed_s = time.perf_counter() - t0
        port = _free_port()
        app = create_app(s, gate=HeaderGate())
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        rows = [{"benchmark": "egress", "metric": "seed 10,000 requests (30,000 files)", "value": seed_s,
                 "unit": "s", "target": ""}]
        try:
            base = f"http://127.0.0.1:{port}/services/egress"
            cases = [
                ("queue page (HTML, all)", "/queue", "sam"),
                ("queue page (HTML, status=submitted)", "/queue?status=submitted", "sam"),
                ("API queue ?project=p3&page=20", "/api/queue?project=p3&page=20", "sam"),
                ("API queue ?status=under_review", "/api/queue?status=under_review", "sam"),
                ("API request detail", f"/api/requests/{REQUESTS // 2}", "sam"),
                ("API my requests (researcher)", "/api/requests", "ann"),
            ]
            with httpx.Client(base_url=base, timeout=30) as client:
                for name, path, user in cases:
                    ms = sorted(_measure(client, path, user))
                    p50 = statistics.median(ms)
                    p95 = ms[int(len(ms) * 0.95) - 1]
                    rows.append({"benchmark": "egress", "metric": f"{name} p50", "value": p50, "unit": "ms",
                                 "target": ""})
                    rows.append({"benchmark": "egress", "metric": f"{name} p95", "value": p95, "unit": "ms",
                                 "target": f"< {TARGET_MS}"})
        finally:
            server.should_exit = True
            thread.join(timeout=10)
        return rows


if __name__ == "__main__":
    for row in run():
        print(row)
