"""The invariants of a notebook service hold whatever configuration merged into its TaskTemplate."""

from __future__ import annotations

import copy

from hub.spawn.hardening import Policy, inspect_violations, tmpfs_options
from hub.swarm import nodes, service

POLICY = Policy(data_dir="/srv/enclave/data/p1", workspace="/srv/enclave/work/p1/ann", network="enc-p1",
                mem_limit=4 << 30, nano_cpus=2 * 10**9, pids_limit=512,
                tmpfs={p: tmpfs_options(p, "256m") for p in ("/tmp", "/home/jovyan")})

HOSTILE = {
    "ContainerSpec": {
        "Image": "enclave-notebook:latest", "Args": ["jupyterhub-singleuser"], "User": "0:0",
        "ReadOnly": False, "CapabilityAdd": ["SYS_ADMIN"], "CapabilityDrop": [],
        "Privileges": {"SELinuxContext": {"Disable": True}}, "Init": True,
        "Mounts": [{"Type": "bind", "Source": "/", "Target": "/host"},
                   {"Type": "bind", "Source": "/srv/enclave/data/p1", "Target": "/data", "ReadOnly": False}],
        "Hosts": ["10.0.0.1 hub"],
    },
    "Resources": {"Limits": {"MemoryBytes": 64 << 30}},
    "RestartPolicy": {"Condition": "any"},
    "Networks": [{"Target": "ingress"}, {"Target": "enc-p2"}],
    "Placement": {"Constraints": ["node.role==worker"]},
}


def test_hardening_overwrites_every_door_a_merged_configuration_opens():
    task = copy.deepcopy(HOSTILE)
    assert len(service.violations(task, POLICY)) >= 8
    service.harden(task, POLICY)
    assert service.violations(task, POLICY) == []
    spec = task["ContainerSpec"]
    assert spec["Image"] == "enclave-notebook:latest" and spec["Args"] == ["jupyterhub-singleuser"]
    assert spec["User"] == "1000:100" and spec["ReadOnly"] is True and spec["CapabilityDrop"] == ["ALL"]
    assert not {"CapabilityAdd", "Privileges", "Init", "Hosts"} & set(spec)
    assert [(m["Type"], m.get("Source"), m["Target"], m.get("ReadOnly")) for m in spec["Mounts"]] == [
        ("bind", "/srv/enclave/data/p1", "/data", True),
        ("bind", "/srv/enclave/work/p1/ann", "/home/jovyan/work", None),  # writable (the API leaves out False)
        ("tmpfs", None, "/home/jovyan", None), ("tmpfs", None, "/tmp", None)]
    assert spec["Mounts"][2]["TmpfsOptions"] == {"SizeBytes": 256 << 20, "Mode": 0o1777}
    assert task["Networks"] == [{"Target": "enc-p1"}]
    assert task["Resources"]["Limits"] == {"MemoryBytes": 4 << 30, "NanoCPUs": 2 * 10**9, "Pids": 512}
    assert task["Resources"]["Reservations"] == {"MemoryBytes": 4 << 30}  # CPU is shared, memory is not
    assert task["RestartPolicy"] == {"Condition": "none", "MaxAttempts": 0}
    assert task["Placement"]["Constraints"] == sorted(["node.role==worker", nodes.PLACEMENT])


def test_each_broken_invariant_is_named():
    task = copy.deepcopy(HOSTILE)
    service.harden(task, POLICY)
    for path, value, named in [
        (("ContainerSpec", "User"), "0:0", "'User'"),
        (("ContainerSpec", "CapabilityAdd"), ["NET_ADMIN"], "'CapabilityAdd'"),
        (("Networks",), [{"Target": "enc-p2"}], "Networks"),
        (("Placement", "Constraints"), ["node.role==worker"], nodes.PLACEMENT),
    ]:
        broken = copy.deepcopy(task)
        target = broken
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        found = service.violations(broken, POLICY)
        assert len(found) == 1 and named in found[0], (path, found)


def test_the_container_on_the_node_is_checked_on_its_own():
    info = {
        "Config": {"User": "1000:100"},
        "HostConfig": {"ReadonlyRootfs": True, "Privileged": False, "CapDrop": ["ALL"], "PidsLimit": 512,
                       "Memory": 4 << 30, "NanoCpus": 2 * 10**9, "IpcMode": "private"},
        "Mounts": [{"Type": "bind", "Source": "/srv/enclave/data/p1", "Destination": "/data", "RW": False},
                   {"Type": "bind", "Source": "/srv/enclave/work/p1/ann", "Destination": "/home/jovyan/work",
                    "RW": True},
                   {"Type": "tmpfs", "Source": "", "Destination": "/tmp", "RW": True}],
    }
    assert inspect_violations(info, POLICY, on_swarm_node=True) == []
    assert inspect_violations(info, POLICY)  # on one host the same container is refused (no security opts)
    info["Mounts"].append({"Type": "tmpfs", "Source": "", "Destination": "/data2", "RW": True})
    assert [v[:6] for v in inspect_violations(info, POLICY, on_swarm_node=True)] == ["Mounts"]
    info["Mounts"].pop()
    info["Mounts"][0]["RW"] = True
    info["HostConfig"]["CapAdd"] = ["SYS_PTRACE"]
    found = inspect_violations(info, POLICY, on_swarm_node=True)
    assert len(found) == 2 and "CapAdd" in found[0] and "Mounts" in found[1]
