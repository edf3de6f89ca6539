"""Spawn latency: from login to a ready notebook server, for 1 and for 10 people at once.

Next to it, the floor measured in the same run on the same image: `docker run` of the image until its
Jupyter server answers, alone and 10 at once. The ratios are what the targets are about (p50 at most
1.3x the floor for one person, 2x for ten): the enclave's own overhead (login with password + TOTP,
permission and admission checks, network and workspace, hardening checks, proxy route, the OAuth-ready
check of the hub) on top of what Docker and Jupyter cost anyway.

Real hub (`enclave up`), real Docker, a throwaway state folder; everything created is removed.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import docker

from bench._stats import pct
from tests.support.env import make_env
from tests.support.spawn import SpawnSite

ROUNDS_ONE = int(os.environ.get("BENCH_SPAWN_ROUNDS", "4"))
CROWD = int(os.environ.get("BENCH_SPAWN_CROWD", "10"))


def _env(tmp: Path):
    env = make_env(tmp)
    os.environ["ENCLAVE_CONFIG"] = str(env.config)
    return env


# -- the floor: docker run + Jupyter answering --------------------------------------------------
def _floor_once(image: str, name: str, client) -> float:
    t0 = time.perf_counter()
    subprocess.run(
        ["docker", "run", "-d", "--rm", "--name", name, image, "jupyter", "server", "--ip=0.0.0.0",
         "--port=8888", "--no-browser", "--ServerApp.token="],
        check=True, capture_output=True,
    )
    ip = ""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if not ip:
                ip = client.api.inspect_container(name)["NetworkSettings"]["IPAddress"]
            if ip and urllib.request.urlopen(f"http://{ip}:8888/api", timeout=2).status == 200:
                return time.perf_counter() - t0
        except Exception:  # noqa: BLE001 - not up yet
            pass
        time.sleep(0.1)
    raise RuntimeError(f"floor container {name} did not answer within 300 s")


def _floor(image: str, client, token: str, n: int, parallel: bool) -> list[float]:
    names = [f"enclave-bench-{token}-floor{i}" for i in range(n)]
    out: list[float] = []
    try:
        if not parallel:
            for name in names:
                out.append(_floor_once(image, name, client))
                subprocess.run(["docker", "rm", "-f", name], capture_output=True)
        else:
            threads = [threading.Thread(target=lambda nm=nm: out.append(_floor_once(image, nm, client))) for nm in names]
            [t.start() for t in threads]
            [t.join() for t in threads]
    finally:
        for name in names:
            subprocess.run(["docker", "rm", "-f", name], capture_output=True)
    if len(out) != n:
        raise RuntimeError("some floor containers did not start")
    return out


# -- the enclave: login to ready -----------------------------------------------------------------
def _login_to_ready(site: SpawnSite, hub, user, slug, stop: bool = True) -> float:
    t0 = time.perf_counter()
    http = site.login(hub, user)
    r = site.request_start(hub, http, user, slug)
    if r.status_code != 200:
        raise RuntimeError(f"start refused: {r.status_code} {r.text[-500:]}")
    site.wait_ready(hub, http, user, slug, timeout=300)
    elapsed = time.perf_counter() - t0
    if stop:
        http.delete(f"{hub.url}/hub/api/users/{user.username}/servers/{slug}", timeout=120)
    return elapsed


def run() -> list[dict]:
    client = docker.from_env()
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="enclave-bench-spawn-") as tmp:
        env = _env(Path(tmp))
        # Same CPUs as the floor container (which has no quota), so the ratio shows the enclave's overhead,
        # not the site's CPU policy.
        site = SpawnSite(env, client, mem_limit="512M", cpu_limit=float(os.cpu_count() or 1), start_timeout=300)
        try:
            # one account per login: a TOTP code is accepted once per account (replay guard)
            solo = [site.user(f"s{i}x") for i in range(ROUNDS_ONE)]
            users = [site.user(f"u{i}x") for i in range(CROWD)]
            slug = site.project("bench", members=solo + users)
            with site.hub() as hub:
                # floor and enclave alternate, so both see the same load on this shared machine
                floor_one, one = [], []
                for i in range(ROUNDS_ONE):
                    floor_one += _floor(site.image, client, site.token, 1, parallel=False)
                    one.append(_login_to_ready(site, hub, solo[i], slug))
                    _wait_gone(client, site)
                floor_crowd = _floor(site.image, client, site.token, CROWD, parallel=True)
                crowd: list[float] = []
                threads = [threading.Thread(target=lambda u=u: crowd.append(_login_to_ready(site, hub, u, slug, stop=False)))
                           for u in users]
                [t.start() for t in threads]
                [t.join() for t in threads]
                if len(crowd) != CROWD:
                    raise RuntimeError(f"only {len(crowd)} of {CROWD} simultaneous starts succeeded:\n{hub.logs()[-3000:]}")
        finally:
            site.cleanup()
    for label, ours, floor, target in (("1 user", one, floor_one, 1.3), (f"{CROWD} users", crowd, floor_crowd, 2.0)):
        for q in (50, 95):
            rows.append({"benchmark": "spawn", "metric": f"login to ready, {label}, p{q}",
                         "value": round(pct(ours, q), 2), "unit": "s", "target": ""})
            rows.append({"benchmark": "spawn", "metric": f"floor docker run to Jupyter answering, {label}, p{q}",
                         "value": round(pct(floor, q), 2), "unit": "s", "target": ""})
        rows.append({"benchmark": "spawn", "metric": f"p50 ratio to floor, {label}",
                     "value": round(pct(ours, 50) / pct(floor, 50), 2), "unit": "x", "target": f"<= {target}"})
        rows.append({"benchmark": "spawn", "metric": f"p95 ratio to floor, {label}",
                     "value": round(pct(ours, 95) / pct(floor, 95), 2), "unit": "x", "target": ""})
    return rows


def _wait_gone(client, site, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not client.containers.list(all=True, filters={"label": f"org.enclave.project={site.slugs[0]}"}):
            return
        time.sleep(0.2)


if __name__ == "__main__":
    for row in run():
        print(row)
