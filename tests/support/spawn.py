"""A site with projects, members and a real hub whose notebook containers run on the real Docker engine.

    site = SpawnSite(enclave_env, docker_client)              # unique names for this test
    slug = site.project("a", members=[ann])                   # data folder with one file, ann a member
    with site.hub() as hub:                                   # RunningHub with this site's [spawner]
        http = site.login(hub, ann)                           # password + TOTP through the form
        box = site.start_server(hub, http, ann, slug)         # spawn URL, wait until ready
    site.cleanup()                                            # containers, networks, firewall chains

Every Docker name (containers, networks, bridges, iptables chains) carries a per-test token, so tests
running at the same time never touch each other's. `dump()` prints `docker inspect` and logs of every
container the site started; tests call it when they fail (see `site.on_failure()`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import sys
import time
from pathlib import Path

import docker.errors
import requests

from enclave import db, projects
from enclave.models import ProjectStatus

from hub.guard.meter import Meter
from hub.spawn import firewall
from tests.support.hub import RunningHub
from tests.support.users import EnrolledUser, enrolled_user

DEV_IMAGE_ENV = "ENCLAVE_TEST_NOTEBOOK_IMAGE"  # only for local iteration; CI builds the real image


def notebook_image(settings) -> str:
    """The researcher image, built (or found up to date) by enclave.images."""
    override = os.environ.get(DEV_IMAGE_ENV)
    if override:
        return override
    from enclave.images import ensure_notebook_image

    return ensure_notebook_image(settings)


# Run inside a container with `python3 -c PROBE host port`: prints how a TCP connection attempt ends.
PROBE = r"""
import errno, socket, sys
s = socket.socket(); s.settimeout(4)
try:
    s.connect((sys.argv[1], int(sys.argv[2]))); print("open")
except ConnectionRefusedError: print("refused")
except socket.timeout: print("timeout")
except OSError as e: print("unreachable" if e.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH) else "error %s" % e.errno)
"""


class SpawnSite:
    def __init__(self, env, docker_client, image: str | None = None, guard: dict | None = None, **spawner):
        self.env = env
        self.docker = docker_client
        self.token = secrets.token_hex(3)
        self.image = image or notebook_image(env.settings)
        self.spawner = {
            "image": self.image,
            "allowed_images": [self.image],
            "network_prefix": f"enct{self.token}-",
            "bridge_prefix": f"e{self.token}-",
            "firewall_chain": f"ENCT{self.token}",
            "mem_limit": "768M",
            "cpu_limit": 1.0,
            "pids_limit": 256,
            "start_timeout": 120,
            **spawner,
        }
        # the host guard's kernel table of this test; its other [guard] settings as the test says
        self.guard = {"nft_table": f"enct{self.token}", **(guard or {})}
        self.slugs: list[str] = []
        self.extra_containers: list = []
        self.extra_networks: list = []
        self.hubs: list[RunningHub] = []

    # -- domain setup --------------------------------------------------------------------------
    def name(self, base: str) -> str:
        return f"{base}{self.token}"

    def user(self, base: str, role: str = "researcher") -> EnrolledUser:
        return enrolled_user(self.env.settings, self.name(base), role=role)

    def project(self, base: str, members: list[EnrolledUser] = (), *, start: dt.date | None = None,
                end: dt.date | None = None, status: ProjectStatus | None = None) -> str:
        slug = f"p{self.token}{base}"
        data = Path(self.env.state_dir).parent / "data" / slug
        data.mkdir(parents=True)
        (data / "cohort.csv").write_text("id,age\n1,40\n2,51\n")
        with db.transaction(self.env.db_url) as s:
            projects.create(s, "test", slug, str(data), title=f"Study {base}", start=start, end=end)
            for m in members:
                projects.add_member(s, "test", slug, m.username)
            if status is not None and status != ProjectStatus.active:
                projects.set_status(s, "test", slug, status)
        self.slugs.append(slug)
        return slug

    # -- hub -----------------------------------------------------------------------------------
    def hub(self, settings: dict | None = None, **spawner) -> RunningHub:
        """A hub with this site's [spawner] and [guard] (plus `spawner` keys), and any other `settings`."""
        hub = RunningHub(self.env, settings={**(settings or {}), "spawner": {**self.spawner, **spawner},
                                             "guard": self.guard}, timeout=90)
        self.hubs.append(hub)
        return hub

    @staticmethod
    def login(hub: RunningHub, user: EnrolledUser) -> requests.Session:
        http = requests.Session()
        r = hub.login(http, user)
        assert r.status_code == 200 and "/hub/home" in r.url, f"login failed: {r.status_code} {r.url}"
        http.headers["X-XSRFToken"] = http.cookies.get("_xsrf", path="/hub/") or http.cookies.get("_xsrf")
        return http

    @staticmethod
    def request_start(hub: RunningHub, http: requests.Session, user: EnrolledUser, slug: str) -> requests.Response:
        """What the home page's start button does: GET /hub/spawn/<user>/<project>."""
        return http.get(f"{hub.url}/hub/spawn/{user.username}/{slug}", timeout=60)

    @staticmethod
    def server_model(hub: RunningHub, http: requests.Session, user: EnrolledUser, slug: str) -> dict | None:
        r = http.get(f"{hub.url}/hub/api/users/{user.username}", timeout=30)
        r.raise_for_status()
        return (r.json().get("servers") or {}).get(slug)

    def wait_ready(self, hub, http, user, slug, timeout: float = 150) -> dict:
        deadline = time.monotonic() + timeout
        model = None
        while time.monotonic() < deadline:
            model = self.server_model(hub, http, user, slug)
            if model and model.get("ready"):
                return model
            if model is None and time.monotonic() > deadline - timeout + 15:
                raise AssertionError(f"server {user.username}/{slug} is not starting:\n{hub.logs()[-4000:]}")
            time.sleep(0.3)
        raise AssertionError(f"server {user.username}/{slug} not ready after {timeout} s: {model}\n{hub.logs()[-4000:]}")

    def start_server(self, hub, http, user, slug):
        r = self.request_start(hub, http, user, slug)
        assert r.status_code == 200, f"start refused: {r.status_code} {r.text[-1500:]}"
        self.wait_ready(hub, http, user, slug)
        return self.container(user, slug)

    def stop_server(self, hub, http, user, slug, timeout: float = 60) -> None:
        """What the person's stop does (the hub API), then wait until the hub has no such server."""
        r = http.delete(f"{hub.url}/hub/api/users/{user.username}/servers/{slug}", timeout=60)
        assert r.status_code in (202, 204), r.text
        deadline = time.monotonic() + timeout
        while self.server_model(hub, http, user, slug) is not None and time.monotonic() < deadline:
            time.sleep(0.5)
        assert self.server_model(hub, http, user, slug) is None, f"{user.username}/{slug} did not stop"

    def container(self, user: EnrolledUser, slug: str):
        found = self.docker.containers.list(
            filters={"label": [f"org.enclave.project={slug}", f"org.enclave.user={user.username}"]}
        )
        assert len(found) == 1, f"expected one container for {user.username}/{slug}, found {found}"
        return found[0]

    # -- things the tests create besides the hub's ---------------------------------------------
    def outside_server(self):
        """An HTTP server in a container on a normal (not internal) Docker network: 'the internet'."""
        net = self.docker.networks.create(f"enct{self.token}-outside", driver="bridge")
        self.extra_networks.append(net)
        box = self.docker.containers.run(
            self.image, ["python3", "-m", "http.server", "8000"], detach=True,
            name=f"enct{self.token}-outside", network=net.name, user="1000:100", working_dir="/tmp",
        )
        self.extra_containers.append(box)
        box.reload()
        ip = box.attrs["NetworkSettings"]["Networks"][net.name]["IPAddress"]
        gateway = box.attrs["NetworkSettings"]["Networks"][net.name]["Gateway"]
        return box, ip, gateway

    @staticmethod
    def probe(container, host: str, port: int) -> str:
        code, out = container.exec_run(["python3", "-c", PROBE, host, str(port)])
        return out.decode().strip()

    # -- diagnostics and cleanup ---------------------------------------------------------------
    def _ours(self) -> list:
        boxes = []
        for slug in self.slugs:
            boxes += self.docker.containers.list(all=True, filters={"label": f"org.enclave.project={slug}"})
        return boxes + list(self.extra_containers)

    def dump(self, out=None) -> None:
        out = out or sys.stdout
        for box in self._ours():
            try:
                box.reload()
                print(f"\n===== docker inspect {box.name} =====\n{json.dumps(box.attrs, indent=1)[:20000]}", file=out)
                print(f"===== docker logs {box.name} =====\n{box.logs(tail=200).decode(errors='replace')}", file=out)
            except docker.errors.NotFound:
                pass
        for hub in self.hubs:
            hub.dump_logs(out)

    def cleanup(self) -> None:
        for hub in self.hubs:
            hub.stop()
        for box in self._ours():
            try:
                box.remove(force=True)
            except docker.errors.NotFound:
                pass
        for net in self.docker.networks.list(names=[f"enct{self.token}-"]):
            if net.name.startswith(f"enct{self.token}-"):
                try:
                    net.remove()
                except docker.errors.APIError:
                    pass
        firewall.Firewall(bridge_prefix=self.spawner["bridge_prefix"], api_port=1,
                          chain=self.spawner["firewall_chain"]).remove()
        Meter(self.guard["nft_table"], self.spawner["bridge_prefix"]).remove()
