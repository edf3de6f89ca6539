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
from tests.support.swarm import HARDENED, SwarmLab, gateway_image, tools_image

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
            for image in (PROBE_IMAGE, gateway_image(docker_client), tools_image(docker_client)):
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


REACH = """
import socket, sys, urllib.request
print("hub", urllib.request.urlopen("http://hub:8081/", timeout=5).read().decode().strip())
for target in sys.argv[1:]:
    host, port = target.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), 2).close()
        print(target, "open")
    except OSError as exc:
        print(target, type(exc).__name__)
"""
GATEWAY_NET, GATEWAY_IP, HUB_IP = "10.231.0.0/24", "10.231.0.2", "10.231.0.1"


def _running_task(client, name: str, timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        running = [t for t in client.api.tasks(filters={"service": name}) if t["Status"]["State"] == "running"]
        if running:
            return running[0]
        time.sleep(0.5)
    raise AssertionError(f"{name} did not run: {client.api.tasks(filters={'service': name})}")


def test_a_server_on_another_node_reaches_the_hub_through_the_gateway_and_nothing_else(lab):
    import docker

    manager = lab.nodes[0]
    client, tools = manager.client, tools_image(lab.docker)
    nodes.verify_all(client, PROBE_IMAGE, CHECK_SECONDS)
    # the hub's host: a bridge of the enclave's, the hub API (a stand-in) on its address
    ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=GATEWAY_NET, gateway=HUB_IP)])
    client.networks.create("encgw", driver="bridge", internal=True, ipam=ipam)
    hub_api = ("mkdir -p /tmp/h && echo hub-api > /tmp/h/index.html && "
               f"exec python3 -m http.server 8081 --bind {HUB_IP} --directory /tmp/h")
    client.containers.run(tools, ["sh", "-c", hub_api], network_mode="host", detach=True, name="hubstandin")
    # two servers, each alone on its own network with the gateway: a on the worker, b on the manager
    ips = {}
    for name, host in (("a", "worker"), ("b", "manager")):
        client.networks.create(f"srv-{name}", **gateway.server_network_options(name, encrypted=False))
        policy = Policy(data_dir=DATA, workspace=WORK, network=f"srv-{name}", mem_limit=128 << 20,
                        nano_cpus=5 * 10**8, pids_limit=64,
                        tmpfs={p: tmpfs_options(p, "16m") for p in ("/tmp", "/home/jovyan")})
        task = {"ContainerSpec": {"Image": tools, "Args": ["sh", "-c", (
                    f"echo notebook-{name} > /tmp/index.html && exec python3 -m http.server 8888 --directory /tmp")]},
                "Placement": {"Constraints": [f"node.hostname=={host}"]}}
        service.harden(task, policy)
        client.api.create_service(task, name=f"nb-{name}", endpoint_spec={"Mode": "dnsrr"})
        running = _running_task(client, f"nb-{name}")
        ips[name] = running["NetworksAttachments"][0]["Addresses"][0].split("/")[0]
    routes = [gateway.Route("a", "nb-a", 9001), gateway.Route("b", "nb-b", 9002)]
    lab.write(manager, "/etc/enclave-gateway/haproxy.cfg",
              gateway.haproxy_config(GATEWAY_IP, HUB_IP, [8081], routes))
    gw = client.containers.create(
        gateway_image(lab.docker), name="gateway", read_only=True, cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
        volumes={"/etc/enclave-gateway": {"bind": "/etc/enclave-gateway", "mode": "ro"}},
        network="encgw", networking_config={"encgw": client.api.create_endpoint_config(ipv4_address=GATEWAY_IP)})
    for name in ("a", "b"):
        client.networks.get(f"srv-{name}").connect(gw, aliases=[gateway.HUB_ALIAS])
    gw.start()
    time.sleep(2)
    gw.reload()
    assert gw.status == "running", gw.logs()

    # the hub's host reaches each server through its own port of the gateway
    hub_side = ("import urllib.request as u\nfor p in (9001, 9002):\n"
                f"    print(u.urlopen('http://{GATEWAY_IP}:%d/' % p, timeout=10).read().decode().strip())")
    out = client.containers.run(tools, ["python3", "-c", hub_side], network_mode="host", remove=True).decode()
    assert out.split() == ["notebook-a", "notebook-b"], out

    # from server a (on the worker): the hub answers; b, the other nodes, the gateway's other ports,
    # the hub's host directly and an outside server do not
    worker = next(n for n in lab.nodes if n.name == "worker")
    outside = worker.client.containers.run(tools, ["python3", "-m", "http.server", "8000"], detach=True,
                                           name="outside", network="bridge")
    outside.reload()
    outside_ip = outside.attrs["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
    a_box = worker.client.containers.get(_running_task(client, "nb-a")["Status"]["ContainerStatus"]["ContainerID"])
    targets = [f"{ips['b']}:8888", "nb-b:8888", f"{outside_ip}:8000", f"{manager.ip}:2377",
               f"{lab.nodes[2].ip}:2377", f"{GATEWAY_IP}:9002", "hub:9002", f"{HUB_IP}:8081"]
    out = a_box.exec_run(["python3", "-c", REACH, *targets]).output.decode()
    lines = dict(line.split(" ", 1) for line in out.strip().splitlines())
    assert lines.pop("hub") == "hub-api", out
    assert set(lines) == set(targets) and "open" not in lines.values(), out
    # the reverse: b's server answers the gateway (sanity: the refusals above are not a dead network)
    b_box = client.containers.get(_running_task(client, "nb-b")["Status"]["ContainerStatus"]["ContainerID"])
    assert "hub hub-api" in b_box.exec_run(["python3", "-c", REACH]).output.decode()
    for name in ("a", "b"):
        client.api.remove_service(f"nb-{name}")


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
