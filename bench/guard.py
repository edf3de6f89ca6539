"""The host guard: exact-copy throughput per browser channel without and with it, and what it costs
ordinary work, measured side by side in one run on one site.

Copy: a researcher copies random bytes out at full speed through each channel (tests/support/channels.py:
contents API in pieces under the read limit, kernel results in execute_reply, print() under the iopub
limit, a terminal running base64) for `BENCH_GUARD_SECONDS` each, first on a hub without the guard, then
on one with the default [guard] settings once the burst is spent (the burst itself is measured first).
Ordinary use: Chromium opens JupyterLab with an empty cache, opens a notebook and runs a cell that reads
/data and shows a table, rounds alternating between the two hubs; and how many bytes that took.
"""

from __future__ import annotations

import os
import re
import statistics
import tempfile
import time
from pathlib import Path

import docker

from enclave import clock, db
from enclave.models import DailyVolume
from tests.support import channels
from tests.support.env import make_env
from tests.support.kernel import run_cell
from tests.support.spawn import SpawnSite

SECONDS = float(os.environ.get("BENCH_GUARD_SECONDS", "20"))
ROUNDS = int(os.environ.get("BENCH_GUARD_ROUNDS", "3"))
MB = 10**6
CELL = ("import pandas as pd\n"
        "df = pd.read_csv('/data/cohort.csv')\n"
        "df.describe()")
MAKE = ("import os\n"
        "for i in range(4):\n"
        "    open(f'/home/jovyan/work/piece{i}.bin', 'wb').write(os.urandom(3 << 20))\n"
        "open('/home/jovyan/work/big.bin', 'wb').write(os.urandom(32 << 20))\n"
        "print('made')")


def _session(hub, site, user, slug):
    """A logged-in researcher with a running server holding files to copy."""
    http = site.login(hub, user)
    site.start_server(hub, http, user, slug)
    server, xsrf = channels.open_server(hub, http, user, slug)
    assert "made" in run_cell(server, http, "python3", MAKE, xsrf)
    return http, server, xsrf


def _copy_all(http, server, xsrf) -> dict[str, float]:
    """MB/min through each channel for SECONDS."""
    pieces = [f"piece{i}.bin" for i in range(4)]
    copies = {
        "contents API": lambda: channels.contents_api(server, http, xsrf, pieces, SECONDS),
        "kernel shell channel": lambda: channels.kernel_shell(server, http, xsrf, SECONDS),
        "kernel output": lambda: channels.kernel_output(server, http, xsrf, SECONDS),
        "terminal": lambda: channels.terminal(server, http, xsrf, "while true; do base64 big.bin; done", SECONDS),
    }
    return {name: copy() / MB / (SECONDS / 60) for name, copy in copies.items()}


def _spend_burst(http, server, xsrf) -> float:
    """MB the guard lets through at speed (contents API until it is slowed): the burst."""
    got, t0 = 0, time.monotonic()
    while True:
        step = channels.contents_api(server, http, xsrf, [f"piece{i}.bin" for i in range(4)], 5)
        got += step
        if step < 2 * MB or time.monotonic() - t0 > 300:  # slowed to the sustained rate
            return got / MB


def _ordinary(browser, hub, site, user, slug) -> float:
    """Seconds from an empty browser to a notebook cell's table: JupyterLab, a notebook, a kernel, a cell."""
    http = site.login(hub, user)
    site.start_server(hub, http, user, slug)
    ctx = browser.new_context()
    ctx.add_cookies([{"name": c.name, "value": c.value, "domain": "127.0.0.1", "path": c.path or "/"}
                     for c in http.cookies])
    page = ctx.new_page()
    t0 = time.perf_counter()
    page.goto(f"{hub.url}/user/{user.username}/{slug}/lab", timeout=240_000)
    page.wait_for_selector(".jp-LauncherCard", timeout=240_000)
    page.locator('.jp-LauncherCard[data-category="Notebook"]').first.click()
    editor = page.locator(".jp-NotebookPanel:visible .jp-Cell .cm-content").first
    editor.wait_for(timeout=120_000)
    page.get_by_text(re.compile(r"Python 3 \(ipykernel\) \| Idle")).wait_for(timeout=120_000)
    editor.click()
    page.keyboard.insert_text(CELL)
    page.keyboard.press("Shift+Enter")
    page.locator(".jp-NotebookPanel:visible .jp-OutputArea-output table").first.wait_for(timeout=180_000)
    elapsed = time.perf_counter() - t0
    ctx.close()
    http.delete(f"{hub.url}/hub/api/users/{user.username}/servers/{slug}", timeout=120)
    return elapsed


def run() -> list[dict]:
    from playwright.sync_api import sync_playwright

    client = docker.from_env()
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="enclave-bench-guard-") as tmp:
        env = make_env(Path(tmp))
        site = SpawnSite(env, client, mem_limit="1G", start_timeout=300)
        try:
            people = {k: site.user(f"{k}x") for k in ("copyoff", "copyon")}
            readers = [site.user(f"r{i}x") for i in range(2 * ROUNDS)]
            slug = site.project("g", members=list(people.values()) + readers)
            plain = site.hub()
            plain.extra["guard"] = {**site.guard, "enabled": False}
            guarded = site.hub()  # the two share one settings file: say it both ways
            guarded.extra["guard"] = {**site.guard, "enabled": True}
            times = {"without": [], "with": []}
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path="/usr/bin/chromium",
                                             args=["--headless", "--no-sandbox", "--disable-gpu"])
                for i in range(ROUNDS):  # alternate, so both see the same load on this shared machine
                    with plain:
                        times["without"].append(_ordinary(browser, plain, site, readers[2 * i], slug))
                    with guarded:
                        times["with"].append(_ordinary(browser, guarded, site, readers[2 * i + 1], slug))
                browser.close()
            with db.transaction(env.db_url) as s:
                opened = [v.bytes for v in s.query(DailyVolume).filter(DailyVolume.day == clock.today())
                          if v.username in {r.username for r in readers}]
            with plain:
                before = _copy_all(*_session(plain, site, people["copyoff"], slug))
            with guarded:
                session = _session(guarded, site, people["copyon"], slug)
                burst = _spend_burst(*session)
                after = _copy_all(*session)  # the same server: its burst is spent
        finally:
            site.cleanup()
    for name in before:
        rows.append({"benchmark": "guard", "metric": f"exact copy, {name}, without the guard",
                     "value": round(before[name], 1), "unit": "MB/min", "target": ""})
        rows.append({"benchmark": "guard", "metric": f"exact copy, {name}, with the guard (burst spent)",
                     "value": round(after[name], 2), "unit": "MB/min", "target": "<= 2"})
    rows.append({"benchmark": "guard", "metric": "burst let through at speed", "value": round(burst, 1),
                 "unit": "MB", "target": ""})
    w, wo = statistics.median(times["with"]), statistics.median(times["without"])
    rows.append({"benchmark": "guard", "metric": "open JupyterLab + run a cell (empty cache), without guard, median",
                 "value": round(wo, 2), "unit": "s", "target": ""})
    rows.append({"benchmark": "guard", "metric": "open JupyterLab + run a cell (empty cache), with guard, median",
                 "value": round(w, 2), "unit": "s", "target": ""})
    rows.append({"benchmark": "guard", "metric": "ordinary use, with / without the guard", "value": round(w / wo, 2),
                 "unit": "x", "target": "<= 1.1"})
    rows.append({"benchmark": "guard", "metric": "bytes sent to open JupyterLab + run the cell, median",
                 "value": round(statistics.median(opened) / MB, 1) if opened else 0, "unit": "MB", "target": ""})
    return rows
