"""The real hub starts notebook servers on a real swarm: this host's engine is the manager, as the
hub's host is in production, and two workers are dockerd containers with the hardened daemon.json
(tests/support/swarm.py). The workers see the data (read-only) and the workspaces at the hub's paths,
as they would an NFS mount (this kernel has no NFS).

The tests share one swarm and one hub, and run in file order: the last one stops a worker."""

from __future__ import annotations

import json
import os
import time

import pytest
import requests
from sqlalchemy import select

from enclave import db, projects
from enclave.models import AuditEvent, GuardedServer

from hub.guard.meter import Meter
from tests.support.env import make_env
from tests.support.spawn import SpawnSite, notebook_image
from tests.support.swarm import SwarmLab, gateway_image

INSIDE = ("grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status; id -u; "
          "echo x > /data/cohort.csv; echo y > /home/jovyan/work/y && echo wrote")
HUB_API = "import urllib.request as u, sys; print(u.urlopen(sys.argv[1], timeout=5).read().decode()[:200])"


@pytest.fixture(scope="module")
def swarm(docker_client, tmp_path_factory):
    """An enclave folder, and the swarm: this host the manager, two workers sharing its folders."""
    env = make_env(tmp_path_factory.mktemp("swarmhub"))
    lab = SwarmLab(docker_client, tmp_path_factory.mktemp("swarmnodes"))
    previous = os.environ.get("ENCLAVE_CONFIG")
    os.environ["ENCLAVE_CONFIG"] = str(env.config)
    try:
        image = notebook_image(env.settings)
        lab.workers_for(env, image)  # verified: the two workers, never this host (no daemon-wide hardening)
        yield env, lab, image
    finally:
        lab.cleanup()
        if previous is None:
            os.environ.pop("ENCLAVE_CONFIG", None)
        else:
            os.environ["ENCLAVE_CONFIG"] = previous


@pytest.fixture(scope="module")
def site(swarm, docker_client):
    env, lab, image = swarm
    site = SpawnSite(env, docker_client, image=image)
    ann, bob = site.user("ann"), site.user("bob")
    slugs = {"ann": site.project("a", members=[ann]), "bob": site.project("b", members=[bob])}
    hub = site.hub(settings={"swarm": {"enabled": True, "gateway_image": gateway_image(docker_client)}})
    try:
        with hub:
            site.people = {"ann": ann, "bob": bob}
            site.projects, site.the_hub, site.lab = slugs, hub, lab
            site.sessions = {name: site.login(hub, person) for name, person in site.people.items()}
            yield site
    finally:
        site.dump()
        for svc in docker_client.services.list(filters={"label": "org.enclave.user"}):
            svc.remove()
        site.cleanup()


def _service(site, who: str):
    found = site.docker.services.list(filters={"label": f"org.enclave.project={site.projects[who]}"})
    assert len(found) == 1, found
    return found[0]


def _task(site, who: str) -> dict:
    running = [t for t in _service(site, who).tasks() if t["Status"]["State"] == "running"]
    assert len(running) == 1, _service(site, who).tasks()
    return running[0]


def _node_of(site, who: str):
    host = site.docker.nodes.get(_task(site, who)["NodeID"]).attrs["Description"]["Hostname"]
    return next(n for n in site.lab.nodes if n.name == host)


def _notebook(site, who: str):
    return _node_of(site, who).client.containers.get(_task(site, who)["Status"]["ContainerStatus"]["ContainerID"])


def _start(site, who: str) -> None:
    person, hub = site.people[who], site.the_hub
    r = site.request_start(hub, site.sessions[who], person, site.projects[who])
    assert r.status_code == 200, r.text[-1500:]
    site.wait_ready(hub, site.sessions[who], person, site.projects[who])


def _events(site, action: str, who: str) -> list[AuditEvent]:
    with db.transaction(site.env.db_url) as session:
        return list(session.execute(select(AuditEvent).where(
            AuditEvent.action == action, AuditEvent.actor == site.people[who].username)).scalars())


def test_two_projects_servers_land_on_different_workers_and_reach_the_hub_and_nothing_else(site):
    hub = site.the_hub
    for who in ("ann", "bob"):
        _start(site, who)
    assert {_node_of(site, "ann").name, _node_of(site, "bob").name} == {"w1", "w2"}  # spread, never this host

    # the researcher's browser reaches JupyterLab through the hub's proxy, the guard and the gateway
    ann, slug = site.people["ann"], site.projects["ann"]
    r = site.sessions["ann"].get(f"{hub.url}/user/{ann.username}/{slug}/lab", timeout=60)
    assert r.status_code == 200 and "JupyterLab" in r.text, r.url

    # the guard meters the server by its gateway's address on the project bridge, as a container's
    with db.transaction(site.env.db_url) as session:
        guarded = {row.project: row for row in session.execute(select(GuardedServer)).scalars()}
    gw = site.docker.containers.get(f"{_service(site, 'ann').name}-gw")
    bridge = f"{site.spawner['network_prefix']}{slug}"
    assert guarded[slug].ip == gw.attrs["NetworkSettings"]["Networks"][bridge]["IPAddress"]
    assert Meter(site.guard["nft_table"], site.spawner["bridge_prefix"]).read()[guarded[slug].key].sent > len(r.content)

    # inside ann's notebook, on its worker: hardened, /data read-only, the workspace writable
    box = _notebook(site, "ann")
    out = box.exec_run(["sh", "-c", INSIDE]).output.decode()
    assert "NoNewPrivs:\t1" in out and "Seccomp:\t2" in out and "\n1000\n" in out, out
    assert "Read-only file system" in out and "wrote" in out, out
    assert (site.env.state_dir / "workspaces" / slug / ann.username / "y").read_text() == "y\n"  # on the hub's side

    # the hub answers as `hub`; bob's server, the nodes, this host and an outside server do not
    api = box.exec_run(["python3", "-c", HUB_API, f"http://hub:{hub.api_port}/hub/api"]).output.decode()
    assert '"version"' in api, api
    worker = _node_of(site, "ann")
    outside = worker.client.containers.run(site.image, ["python3", "-m", "http.server", "8000"], detach=True,
                                           network="bridge", user="1000:100", working_dir="/tmp")
    outside.reload()
    bob_task = _task(site, "bob")
    targets = {
        "bob's server": (bob_task["NetworksAttachments"][0]["Addresses"][0].split("/")[0], 8888),
        "bob's server by name": (_service(site, "bob").name, 8888),
        "an outside server": (outside.attrs["NetworkSettings"]["Networks"]["bridge"]["IPAddress"], 8000),
        "its own node": (worker.ip, 2377),
        "the other worker": (next(n.ip for n in site.lab.nodes if n is not worker), 2377),
        "the hub's public port through the gateway": ("hub", hub.port),
        "the proxy's API through the gateway": ("hub", hub.proxy_api_port),
        "this host": (site.lab.host_manager, hub.api_port),
        "this host's swarm port": (site.lab.host_manager, 2377),
    }
    seen = {what: site.probe(box, host, port) for what, (host, port) in targets.items()}
    assert "open" not in seen.values(), seen
    outside.remove(force=True)


def test_a_server_no_node_has_room_for_is_refused_with_a_message_and_leaves_nothing(site):
    cyd = site.user("cyd")
    big = site.project("big", members=[cyd])
    with db.transaction(site.env.db_url) as session:
        projects.set_container_limits(session, "test", big, mem_limit="4T")  # more than any worker has
    http = site.login(site.the_hub, cyd)
    r = site.request_start(site.the_hub, http, cyd, big)
    said = r.text if r.status_code != 200 else _progress_failure(site.the_hub, http, cyd, big)
    assert "No notebook node has room for this server now" in said, said[-1500:]
    with db.transaction(site.env.db_url) as session:
        [refused] = session.execute(select(AuditEvent).where(
            AuditEvent.action == "notebook.refused", AuditEvent.actor == cyd.username)).scalars()
    assert json.loads(refused.detail)["reason"] == "no_node"
    assert site.server_model(site.the_hub, http, cyd, big) is None
    assert not site.docker.services.list(filters={"label": f"org.enclave.project={big}"})
    assert not site.docker.containers.list(all=True, filters={"label": f"org.enclave.project={big}"})


def _progress_failure(hub, http, user, slug) -> str:
    """The message the spawn-pending page shows when the start fails (the hub's progress stream)."""
    url = f"{hub.url}/hub/api/users/{user.username}/servers/{slug}/progress"
    with http.get(url, stream=True, timeout=120, headers={"Accept": "text/event-stream"}) as r:
        for line in r.iter_lines(decode_unicode=True):
            if line and line.startswith("data:") and json.loads(line[5:]).get("failed"):
                return json.loads(line[5:]).get("message", "")
    return "the progress stream ended without a failure"


def test_a_worker_that_goes_away_stops_its_servers_and_a_new_start_lands_on_another(site):
    hub, ann, slug = site.the_hub, site.people["ann"], site.projects["ann"]
    gone = _node_of(site, "ann")
    gone.box.stop(timeout=1)

    # the hub finds the server gone (its node is down), and says so to the person
    deadline = time.monotonic() + 150
    while site.server_model(hub, site.sessions["ann"], ann, slug) is not None and time.monotonic() < deadline:
        time.sleep(1)
    assert site.server_model(hub, site.sessions["ann"], ann, slug) is None, "the server was not reported stopped"
    page = site.sessions["ann"].get(f"{hub.url}/user/{ann.username}/{slug}/lab", timeout=30)
    assert "not running" in page.text, page.text[-2000:]
    stops = _events(site, "notebook.stop", "ann")
    assert stops and json.loads(stops[-1].detail).get("ended_on_its_own") is True
    with db.transaction(site.env.db_url) as session:
        assert slug not in {row.project for row in session.execute(select(GuardedServer)).scalars()}
    assert not site.docker.containers.list(all=True, filters={"label": f"org.enclave.project={slug}"})

    # bob's server, on the other worker, and the hub are untouched; a new start lands on the worker left
    assert site.server_model(hub, site.sessions["bob"], site.people["bob"], site.projects["bob"])["ready"]
    _start(site, "ann")
    assert _node_of(site, "ann").name == _node_of(site, "bob").name != gone.name
    r = site.sessions["ann"].get(f"{hub.url}/user/{ann.username}/{slug}/lab", timeout=60)
    assert r.status_code == 200 and "JupyterLab" in r.text, r.url
    assert requests.get(f"{hub.url}/hub/api", timeout=10).status_code == 200
