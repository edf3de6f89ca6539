"""From inside a project container only the hub API answers.

Everything probed here was created by the test: a TCP server on the host (another port), containers of
two projects, and a stand-in "outside" HTTP server in a container on an ordinary Docker network. Each
"unreachable" is paired with a control showing the target does answer from elsewhere, so the test
fails if a target is simply down. At the end the firewall is removed with `enclave firewall remove`
and no rule of ours is left on the host.
"""

from __future__ import annotations

import socket
import subprocess
import threading
import urllib.request

import pytest

from tests.support.postgres import free_port

pytestmark = pytest.mark.integration

BLOCKED = {"unreachable", "timeout"}  # rejected by our rules, or dropped by Docker's


@pytest.fixture
def host_server():
    """A TCP server on every host address, on a port that is not the hub's."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("0.0.0.0", free_port()))
    srv.listen(16)
    stop = threading.Event()

    def serve():
        srv.settimeout(0.5)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
                conn.close()
            except OSError:
                pass

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield srv.getsockname()[1]
    stop.set()
    t.join(timeout=5)
    srv.close()


def _ip(box, network):
    box.reload()
    return box.attrs["NetworkSettings"]["Networks"][network]["IPAddress"]


def _gateway(box, network):
    return box.attrs["NetworkSettings"]["Networks"][network]["Gateway"]


def _http_status(url):
    try:
        return urllib.request.urlopen(url, timeout=10).status
    except urllib.error.HTTPError as exc:  # an HTTP answer is an answer
        return exc.code


def test_project_container_reaches_the_hub_api_and_nothing_else(site, host_server, enclave_env, cli):
    ann, bob, cat = site.user("ann"), site.user("bob"), site.user("cat")
    alpha = site.project("a", members=[ann, cat])
    beta = site.project("b", members=[bob])
    net_a = f"{site.spawner['network_prefix']}{alpha}"
    net_b = f"{site.spawner['network_prefix']}{beta}"
    outside, outside_ip, outside_gw = site.outside_server()

    with site.hub() as hub:
        sessions = {u.username: site.login(hub, u) for u in (ann, bob, cat)}
        for u, slug in ((ann, alpha), (bob, beta), (cat, alpha)):
            r = site.request_start(hub, sessions[u.username], u, slug)
            assert r.status_code == 200, r.text[-1000:]
        for u, slug in ((ann, alpha), (bob, beta), (cat, alpha)):
            site.wait_ready(hub, sessions[u.username], u, slug)
        box = site.container(ann, alpha)
        other_project = site.container(bob, beta)
        same_project = site.container(cat, alpha)
        gw = _gateway(box, net_a)

        # 1. the hub API answers on the project gateway, and that is where the server is told to find it
        env = dict(e.split("=", 1) for e in box.attrs["Config"]["Env"])
        assert env["JUPYTERHUB_API_URL"] == f"http://{gw}:{hub.api_port}/hub/api"
        code, out = box.exec_run(["python3", "-c",
                                  "import os,urllib.request;"
                                  "print(urllib.request.urlopen(os.environ['JUPYTERHUB_API_URL'],timeout=5).status)"])
        assert out.decode().strip() == "200", out

        # 2. another host port: blocked from the project; the same port answers from an ordinary container
        assert site.probe(outside, outside_gw, host_server) == "open"
        assert site.probe(box, gw, host_server) in BLOCKED
        # ... and the hub API port is closed to ordinary containers (it listens on 0.0.0.0)
        assert site.probe(outside, outside_gw, hub.api_port) == "refused"

        # 3. a container of another project: blocked; the host (proxy side) reaches it
        beta_ip = _ip(other_project, net_b)
        assert _http_status(f"http://{beta_ip}:8888/user/{bob.username}/{beta}/api") in (200, 302, 403)
        assert site.probe(box, beta_ip, 8888) in BLOCKED
        # ... and the other project's gateway offers nothing but the hub API either
        assert site.probe(box, _gateway(other_project, net_b), host_server) in BLOCKED
        # the hub API answers on the container's own gateway only: not on another project's gateway, nor
        # on any other host address (another bridge's, here the "outside" network's gateway)
        assert site.probe(box, gw, hub.api_port) == "open"
        assert site.probe(box, _gateway(other_project, net_b), hub.api_port) in BLOCKED
        assert site.probe(box, outside_gw, hub.api_port) in BLOCKED
        # the package index, the one other destination, likewise: own gateway only, closed to others
        index_port = hub.ports["packages"]["index_port"]
        assert env["PIP_INDEX_URL"] == f"http://{gw}:{index_port}/simple/"
        assert site.probe(box, gw, index_port) == "open"
        assert site.probe(box, _gateway(other_project, net_b), index_port) in BLOCKED
        assert site.probe(box, outside_gw, index_port) in BLOCKED
        assert site.probe(outside, outside_gw, index_port) == "refused"

        # 4. another researcher's server in the same project: inter-container traffic is off
        cat_ip = _ip(same_project, net_a)
        assert _http_status(f"http://{cat_ip}:8888/user/{cat.username}/{alpha}/api") in (200, 302, 403)
        assert site.probe(box, cat_ip, 8888) in BLOCKED

        # 5. "the internet": an HTTP server on an ordinary Docker network
        assert _http_status(f"http://{outside_ip}:8000/") == 200
        assert site.probe(box, outside_ip, 8000) in BLOCKED

        # 6. whatever route the container has leads only to its gateway, which is firewalled
        routes = box.exec_run(["cat", "/proc/net/route"]).output.decode().splitlines()[1:]
        defaults = [r.split() for r in routes if r.split()[1] == "00000000"]
        for fields in defaults:
            gw_hex = fields[2]
            via = socket.inet_ntoa(bytes.fromhex(gw_hex)[::-1])
            assert via == gw, routes

    # removal leaves nothing of ours behind
    code, out, err = cli("firewall", "status")
    assert code == 0 and "applied" in out, out + err
    code, out, err = cli("firewall", "remove")
    assert code == 0, err
    for tool in ("iptables-save", "ip6tables-save"):
        dump = subprocess.run([tool], capture_output=True, text=True, check=True).stdout
        assert site.spawner["firewall_chain"] not in dump  # (Docker's own rules for the networks remain
        # until the networks are removed, which the fixture does)
    code, out, err = cli("firewall", "status")
    assert code == 1 and "NOT applied" in out
