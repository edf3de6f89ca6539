"""Only nodes seen to harden their containers may run notebooks: a real two-node swarm (a manager
whose daemon sets no-new-privileges and the enclave's seccomp profile, a worker on Docker's defaults),
checked by `enclave swarm check` against the manager's engine."""

from __future__ import annotations

import pytest

from hub.swarm import nodes
from tests.support.swarm import HARDENED, SwarmLab

PROBE_IMAGE = "enclave-base:bookworm"  # has sh, sed and perl, as the notebook image has


@pytest.fixture
def lab(docker_client, tmp_path):
    lab = SwarmLab(docker_client, tmp_path)
    try:
        yield lab
    finally:
        lab.cleanup()


def _labels(node):
    node.reload()
    return node.attrs["Spec"].get("Labels") or {}


def test_only_a_node_that_hardens_its_containers_is_labelled_for_notebooks(lab, cli, monkeypatch):
    manager = lab.node("manager", {**HARDENED})
    plain = lab.node("plain", {})  # Docker's defaults: no no-new-privileges, Docker's seccomp (ptrace allowed)
    lab.init(manager)
    lab.join(plain, manager)
    for node in (manager, plain):
        lab.load(node, PROBE_IMAGE)
    monkeypatch.setenv("DOCKER_HOST", manager.url)  # the command talks to the swarm's manager

    code, out, err = cli("swarm", "check", "--image", PROBE_IMAGE)
    assert code == 1, out + err  # one node refused
    assert "manager: verified" in out
    assert "plain: REFUSED" in out
    assert "no-new-privileges is not set" in out and "allows ptrace" in out
    by_host = {n.attrs["Description"]["Hostname"]: n for n in manager.client.nodes.list()}
    assert _labels(by_host["manager"]).get(nodes.LABEL) == "yes"
    assert nodes.LABEL not in _labels(by_host["plain"])
    assert manager.client.services.list() == []  # the probes are gone

    # a label set by hand does not survive the next check; a node that goes away loses it too
    spec = dict(by_host["plain"].attrs["Spec"], Labels={nodes.LABEL: "yes"})
    by_host["plain"].update(spec)
    plain.box.stop(timeout=1)
    code, out, err = cli("swarm", "check", "--image", PROBE_IMAGE)
    assert code == 1 and "plain: REFUSED" in out, out + err
    assert nodes.LABEL not in _labels(by_host["plain"])
    assert _labels(by_host["manager"]).get(nodes.LABEL) == "yes"


def test_a_node_without_the_image_or_a_garbled_answer_is_refused_not_passed(lab):
    manager = lab.node("manager", {**HARDENED})
    lab.init(manager)
    [node] = manager.client.nodes.list()
    check = nodes.check_node(manager.client, node, "enclave-no-such-image:1", timeout=30)
    assert not check.verified and check.problems, check
    assert nodes.read_probe("") and nodes.read_probe("nnp=1\nseccomp=2\n")  # no 'probe=done'
    forged = "nnp=1\nseccomp=2\ncapeff=0000000000000000\nuid=1000\nptrace=allowed\nprobe=done\n"
    assert nodes.read_probe(forged) == [nodes.EXPECTED["ptrace"][1]]
