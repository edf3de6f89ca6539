"""Notebook servers on a Docker Swarm go only to nodes seen to harden their containers, and run there
as hardened as on one host. A real three-node swarm of dockerd containers (tests/support/swarm.py):
a manager and a worker whose daemons set no-new-privileges and the enclave's seccomp profile, and a
"plain" worker on Docker's defaults.

The tests share one swarm (it takes a minute to build) and run in file order: the later ones stop
the worker."""

from __future__ import annotations

import copy
import time

import pytest

from enclave.settings import Settings

from hub.spawn.hardening import Policy, inspect_violations, tmpfs_options
from hub.swarm import gateway, nodes, service
from tests.support.swarm import HARDENED, SwarmLab, tools_image

PROBE_IMAGE = "enclave-base:bookworm"  # has sh, sed and perl, as the notebook image has
CHECK_SECONDS = Settings().swarm.check_timeout_seconds  # what `enclave swarm check` waits by default
DATA, WORK = "/srv/enclave/data/p1", "/srv/enclave/work/p1/ann"
PREPARE = f"mkdir -p {DATA} {WORK} && echo 1,2 > {DATA}/t.csv && chown 1000:100 {WORK}"  # a node's storage
INSIDE = ("grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status; id -u; "
          "echo x > /data/t.csv; echo y > /home/jovyan/work/y && echo wrote; cat /data/t.csv")


@pytest.fixture(scope="module")
def lab(docker_client, tmp_path_factory):
    lab = SwarmLab(docker_client, tmp_path_factory.mktemp("swarm"))
    try:
        manager = lab.node("manager", {**HARDENED})
        lab.node("worker", {**HARDENED})
        lab.node("plain", {})  # Docker's defaults: no no-new-privileges, Docker's seccomp (ptrace allowed)
        lab.init(manager)
        for node in lab.nodes:
            if node is not manager:
                lab.join(node, manager)
            for image in (PROBE_IMAGE, tools_image(docker_client)):
                lab.load(node, image)
            made = node.box.exec_run(["sh", "-c", PREPARE])
            assert made.exit_code == 0, made.output
        yield lab
    finally:
        lab.cleanup()


def _by_host(lab) -> dict:
    return {n.attrs["Description"]["Hostname"]: n for n in lab.nodes[0].client.nodes.list()}


def _labels(node) -> dict:
    node.reload()
    return node.attrs["Spec"].get("Labels") or {}


def test_only_the_nodes_that_harden_their_containers_are_labelled_for_notebooks(lab, cli, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", lab.nodes[0].url)  # the command talks to the swarm's manager
    code, out, err = cli("swarm", "check", "--image", PROBE_IMAGE)
    assert code == 1, out + err  # one node refused
    assert "manager: verified" in out and "worker: verified" in out
    assert "plain: REFUSED" in out
    assert "no-new-privileges is not set" in out and "allows ptrace" in out
    assert gateway.overlay_encryption()[1] in out  # said at every check (no IPsec ESP on these machines)
    hosts = _by_host(lab)
    assert _labels(hosts["manager"]).get(nodes.LABEL) == "yes" == _labels(hosts["worker"]).get(nodes.LABEL)
    assert nodes.LABEL not in _labels(hosts["plain"])
    assert lab.nodes[0].client.services.list() == []  # the probes are gone


def test_a_node_without_the_managers_image_bytes_is_refused_whatever_its_name_says(lab, cli, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", lab.nodes[0].url)
    worker = next(n for n in lab.nodes if n.name == "worker")
    original = lab.docker.images.get(PROBE_IMAGE).id
    worker.client.images.remove(original, force=True)
    worker.client.images.get(tools_image(lab.docker)).tag(*PROBE_IMAGE.split(":"))  # other bytes, same name
    code, out, err = cli("swarm", "check", "--image", PROBE_IMAGE)
    assert code == 1 and "worker: REFUSED" in out and "does not hold the image" in out, out + err
    assert "manager: verified" in out
    assert nodes.LABEL not in _labels(_by_host(lab)["worker"])
    lab.load(worker, PROBE_IMAGE)  # the operator loads the manager's copy: the worker passes again
    code, out, err = cli("swarm", "check", "--image", PROBE_IMAGE)
    assert "worker: verified" in out, out + err
    code, out, err = cli("swarm", "check", "--image", "enclave-nowhere:1")
    assert code == 2 and "the manager does not hold the image enclave-nowhere:1" in out, out + err


def test_notebook_services_land_only_on_verified_nodes_and_run_hardened_there(lab):
    client = lab.nodes[0].client
    nodes.verify_all(client, PROBE_IMAGE, CHECK_SECONDS)
    client.networks.create("enc-p1", driver="overlay", internal=True, attachable=True)
    policy = Policy(data_dir=DATA, workspace=WORK, network="enc-p1", mem_limit=128 << 20, nano_cpus=5 * 10**8,
                    pids_limit=64, tmpfs={p: tmpfs_options(p, "16m") for p in ("/tmp", "/home/jovyan")})
    names = []
    for i in range(4):
        task = {"ContainerSpec": {"Image": PROBE_IMAGE, "Args": ["sleep", "300"], "CapabilityAdd": ["SYS_ADMIN"]},
                "Placement": {"Constraints": ["node.role!=nosuch"]}}
        service.harden(task, policy)
        assert service.violations(task, policy) == []
        names.append(client.api.create_service(copy.deepcopy(task), name=f"nb{i}",
                                               endpoint_spec={"Mode": "dnsrr"})["ID"])
    hosts = {n.id: n.attrs["Description"]["Hostname"] for n in client.nodes.list()}
    placed, deadline = {}, time.monotonic() + 120
    while len(placed) < len(names) and time.monotonic() < deadline:
        for sid in names:
            running = [t for t in client.api.tasks(filters={"service": sid}) if t["Status"]["State"] == "running"]
            if running:
                placed[sid] = (hosts[running[0]["NodeID"]], running[0]["Status"]["ContainerStatus"]["ContainerID"])
        time.sleep(0.5)
    assert len(placed) == len(names), client.api.tasks()
    assert {host for host, _ in placed.values()} <= {"manager", "worker"}, placed  # never the plain node
    by_name = {n.name: n for n in lab.nodes}
    for host, container_id in placed.values():
        box = by_name[host].client.containers.get(container_id)
        assert inspect_violations(box.attrs, policy, on_swarm_node=True) == [], (host, box.attrs["HostConfig"])
        out = box.exec_run(["sh", "-c", INSIDE]).output.decode()
        assert "NoNewPrivs:\t1" in out and "Seccomp:\t2" in out and "\n1000\n" in out, out
        assert "Read-only file system" in out and "wrote" in out and out.rstrip().endswith("1,2"), out
    for sid in names:
        client.api.remove_service(sid)


def test_a_label_set_by_hand_or_a_node_gone_loses_the_label(lab, cli, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", lab.nodes[0].url)
    hosts = _by_host(lab)
    hosts["plain"].update(dict(hosts["plain"].attrs["Spec"], Labels={nodes.LABEL: "yes"}))
    code, out, err = cli("swarm", "check", "--image", PROBE_IMAGE)
    assert code == 1 and "plain: REFUSED" in out, out + err
    assert nodes.LABEL not in _labels(hosts["plain"])
    # a verified worker that goes away is refused at the next check, and cannot take notebooks
    next(n for n in lab.nodes if n.name == "worker").box.stop(timeout=1)
    deadline = time.monotonic() + 60
    while hosts["worker"].attrs["Status"]["State"] == "ready" and time.monotonic() < deadline:
        time.sleep(1)
        hosts["worker"].reload()
    code, out, err = cli("swarm", "check", "--image", PROBE_IMAGE)
    assert "worker: REFUSED" in out and "node is down" in out, out + err
    assert nodes.LABEL not in _labels(hosts["worker"])
    assert _labels(hosts["manager"]).get(nodes.LABEL) == "yes"


def test_a_node_without_the_image_or_a_garbled_answer_is_refused_not_passed(lab):
    client = lab.nodes[0].client
    node = next(n for n in client.nodes.list() if n.attrs["Description"]["Hostname"] == "manager")
    check = nodes.check_node(client, node, "enclave-no-such-image:1", timeout=30)
    assert not check.verified and check.problems, check
    assert nodes.read_probe("") and nodes.read_probe("nnp=1\nseccomp=2\n")  # no 'probe=done'
    forged = "nnp=1\nseccomp=2\ncapeff=0000000000000000\nuid=1000\nptrace=allowed\nprobe=done\n"
    assert nodes.read_probe(forged) == [nodes.EXPECTED["ptrace"][1]]
