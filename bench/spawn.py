"""Spawn latency: from login to a ready notebook server, for 1 and for 10 people at once.

Next to it, the floor measured in the same run on the same image: `docker run` of the image until its
Jupyter server answers, alone and 10 at once. The image's Jupyter server is its own command,
`jupyterhub-singleuser` (the server the enclave runs), given the environment a hub gives it and a stub
hub API on the host's Docker bridge (the server asks its hub for the version before it serves). The
ratios against that floor are what the targets are about (p50 at most 1.3x for one person, 2x for
ten): the enclave's own overhead (login with password + TOTP, permission and admission checks,
network and workspace, hardening checks, proxy route, the hub's readiness check) on top of what
Docker and Jupyter cost anyway. A second floor, bare `jupyter server` in the same image, is shown
too: the difference between the two floors is what JupyterHub's single-user extension costs.

"Ready" is when the hub's progress event stream says so, which is what the spawn-pending page in a
browser waits on. Real hub (`enclave up`), real Docker, a throwaway state folder; everything created
is removed.
"""

from __future__ import annotations

import json
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

ROUNDS_ONE = int(os.environ.get("BENCH_SPAWN_ROUNDS", "8"))
CROWD = int(os.environ.get("BENCH_SPAWN_CROWD", "10"))


# -- the floor: docker run + Jupyter answering --------------------------------------------------
class StubHubApi:
    """What a single-user server asks its hub at start (GET /hub/api, POST activity), answered at once.

    Listens on the default Docker bridge's gateway, where the floor containers reach the host.
    """

    def __init__(self, client):
        import http.server
        import json

        import jupyterhub

        gateway = _bridge_address(client.networks.get("bridge").attrs)
        body = json.dumps({"version": jupyterhub.__version__}).encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("X-JupyterHub-Version", jupyterhub.__version__)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer((gateway, 0), Handler)
        self.url = f"http://{gateway}:{self.server.server_address[1]}/hub/api"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def _bridge_address(info: dict) -> str:
    """The host's address on Docker's default bridge, asked of the interface itself: a fresh daemon's
    `docker network inspect bridge` lists the subnet but no gateway."""
    import json

    iface = (info.get("Options") or {}).get("com.docker.network.bridge.name", "docker0")
    out = subprocess.run(["ip", "-4", "-j", "addr", "show", "dev", iface], capture_output=True, text=True, check=True)
    for link in json.loads(out.stdout or "[]"):
        for addr in link.get("addr_info") or []:
            if addr.get("family") == "inet":
                return addr["local"]
    raise RuntimeError(f"Docker's default bridge {iface} has no IPv4 address")


def _singleuser_env(api_url: str, name: str) -> list[str]:
    env = {
        "JUPYTERHUB_API_URL": api_url, "JUPYTERHUB_API_TOKEN": "floor", "JUPYTERHUB_USER": name,
        "JUPYTERHUB_CLIENT_ID": f"jupyterhub-user-{name}", "JUPYTERHUB_BASE_URL": "/",
        "JUPYTERHUB_SERVICE_PREFIX": f"/user/{name}/", "JUPYTERHUB_SERVICE_URL": f"http://0.0.0.0:8888/user/{name}/",
    }
    return [arg for k, v in env.items() for arg in ("-e", f"{k}={v}")]


def _floor_once(image: str, name: str, client, api_url: str | None) -> float:
    """`docker run` until Jupyter answers: the image's own server when api_url is given, else bare jupyter server."""
    if api_url:
        args, probe = [*_singleuser_env(api_url, name), image], f"/user/{name}/api"
    else:
        args = [image, "jupyter", "server", "--ip=0.0.0.0", "--port=8888", "--no-browser", "--ServerApp.token="]
        probe = "/api"
    t0 = time.perf_counter()
    subprocess.run(["docker", "run", "-d", "--rm", "--name", name, *args], check=True, capture_output=True)
    ip = ""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if not ip:
                ip = client.api.inspect_container(name)["NetworkSettings"]["IPAddress"]
            if ip and urllib.request.urlopen(f"http://{ip}:8888{probe}", timeout=2).status == 200:
                return time.perf_counter() - t0
        except Exception:  # noqa: BLE001 - not up yet
            pass
        time.sleep(0.05)
    raise RuntimeError(f"floor container {name} did not answer within 300 s")


def _floor(image: str, client, token: str, n: int, parallel: bool, api_url: str | None) -> list[float]:
    kind = "su" if api_url else "js"
    names = [f"enclave-bench-{token}-floor{kind}{i}" for i in range(n)]
    out: list[float] = []
    try:
        if not parallel:
            for name in names:
                out.append(_floor_once(image, name, client, api_url))
                subprocess.run(["docker", "rm", "-f", name], capture_output=True)
        else:
            threads = [threading.Thread(target=lambda nm=nm: out.append(_floor_once(image, nm, client, api_url)))
                       for nm in names]
            [t.start() for t in threads]
            [t.join() for t in threads]
    finally:
        for name in names:
            subprocess.run(["docker", "rm", "-f", name], capture_output=True)
    if len(out) != n:
        raise RuntimeError("some floor containers did not start")
    return out


# -- the enclave: login to ready -----------------------------------------------------------------
def _wait_ready_events(hub, http, user, slug, timeout: float = 300) -> None:
    """Follow the hub's progress event stream (what the spawn-pending page does) until it says ready."""
    url = f"{hub.url}/hub/api/users/{user.username}/servers/{slug}/progress"
    with http.get(url, stream=True, timeout=timeout, headers={"Accept": "text/event-stream"}) as r:
        r.raise_for_status()
        for line in r.iter_lines(decode_unicode=True):
            if not line or not line.startswith("data:"):
                continue
            event = json.loads(line[5:])
            if event.get("ready"):
                return
            if event.get("failed"):
                raise RuntimeError(f"spawn failed: {event.get('message')}")
    raise RuntimeError("progress stream ended without a ready event")


def _login_to_ready(site: SpawnSite, hub, user, slug, stop: bool = True) -> float:
    t0 = time.perf_counter()
    http = site.login(hub, user)
    # the home page's start button; the hub answers within 1 s with the spawn-pending page (or the server)
    r = http.get(f"{hub.url}/hub/spawn/{user.username}/{slug}", allow_redirects=False, timeout=60)
    if r.status_code != 302:
        raise RuntimeError(f"start refused: {r.status_code} {r.text[-500:]}")
    _wait_ready_events(hub, http, user, slug)
    elapsed = time.perf_counter() - t0
    if stop:
        http.delete(f"{hub.url}/hub/api/users/{user.username}/servers/{slug}", timeout=120)
    return elapsed


def run() -> list[dict]:
    client = docker.from_env()
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="enclave-bench-spawn-") as tmp:
        env = make_env(Path(tmp))  # RunningHub gives `enclave up` this settings file (ENCLAVE_CONFIG)
        # Same CPUs as the floor container (which has no quota), so the ratio shows the enclave's overhead,
        # not the site's CPU policy.
        site = SpawnSite(env, client, mem_limit="512M", cpu_limit=float(os.cpu_count() or 1), start_timeout=300)
        try:
            # one account per login: a TOTP code is accepted once per account (replay guard)
            solo = [site.user(f"s{i}x") for i in range(ROUNDS_ONE)]
            users = [site.user(f"u{i}x") for i in range(CROWD)]
            slug = site.project("bench", members=solo + users)
            stub = StubHubApi(client)
            with site.hub() as hub:
                # floors and enclave alternate, so all see the same load on this shared machine
                floor_one, bare_one, one = [], [], []
                for i in range(ROUNDS_ONE):
                    floor_one += _floor(site.image, client, site.token, 1, False, stub.url)
                    bare_one += _floor(site.image, client, site.token, 1, False, None)
                    one.append(_login_to_ready(site, hub, solo[i], slug))
                    _wait_gone(client, site)
                floor_crowd = _floor(site.image, client, site.token, CROWD, True, stub.url)
                bare_crowd = _floor(site.image, client, site.token, CROWD, True, None)
                crowd: list[float] = []
                threads = [threading.Thread(target=lambda u=u: crowd.append(_login_to_ready(site, hub, u, slug, stop=False)))
                           for u in users]
                [t.start() for t in threads]
                [t.join() for t in threads]
                if len(crowd) != CROWD:
                    raise RuntimeError(f"only {len(crowd)} of {CROWD} simultaneous starts succeeded:\n{hub.logs()[-3000:]}")
            stub.close()
        finally:
            site.cleanup()
    for label, ours, floor, bare, target in (("1 user", one, floor_one, bare_one, 1.3),
                                             (f"{CROWD} users", crowd, floor_crowd, bare_crowd, 2.0)):
        for q in (50, 95):
            rows.append({"benchmark": "spawn", "metric": f"login to ready, {label}, p{q}",
                         "value": round(pct(ours, q), 2), "unit": "s", "target": ""})
            rows.append({"benchmark": "spawn", "metric": f"floor: docker run to the image's server answering, {label}, p{q}",
                         "value": round(pct(floor, q), 2), "unit": "s", "target": ""})
        rows.append({"benchmark": "spawn", "metric": f"p50 ratio to floor, {label}",
                     "value": round(pct(ours, 50) / pct(floor, 50), 2), "unit": "x", "target": f"<= {target}"})
        rows.append({"benchmark": "spawn", "metric": f"p95 ratio to floor, {label}",
                     "value": round(pct(ours, 95) / pct(floor, 95), 2), "unit": "x", "target": ""})
        rows.append({"benchmark": "spawn", "metric": f"bare `jupyter server` in the image, {label}, p50",
                     "value": round(pct(bare, 50), 2), "unit": "s", "target": ""})
        rows.append({"benchmark": "spawn", "metric": f"p50 ratio to bare jupyter server, {label}",
                     "value": round(pct(ours, 50) / pct(bare, 50), 2), "unit": "x", "target": ""})
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
