"""A notebook server as a Swarm service: the single-host invariants (hub.spawn.hardening.Policy) in
the form a service takes, written last over whatever configuration merged in, checked, then checked
again on the container the node created (hub.spawn.hardening.inspect_violations, `on_swarm_node`).

Differences from one host, each closed elsewhere:
- no-new-privileges and the seccomp profile cannot be set per service on Docker 20.10 (moby#41371):
  the node's daemon applies them, and only nodes seen doing so are eligible (`hub.swarm.nodes`,
  whose label every service is constrained to);
- tmpfs mounts take no owner in a service: `/home/jovyan` and `/tmp` are mode 1777 (every process
  in the container is the notebook user anyway);
- a dead task is not restarted elsewhere (`RestartPolicy: none`): the hub reports the server stopped
  and the person starts it again, through the same checks as any start.
"""

from __future__ import annotations

from enclave import units

from hub.spawn.hardening import DATA_MOUNT, WORK_MOUNT, Policy
from hub.swarm.nodes import PLACEMENT

# ContainerSpec keys that would open a door; removed whatever the configuration says.
FORBIDDEN_CONTAINER_KEYS = ("CapabilityAdd", "Privileges", "Hosts", "Groups", "Configs", "Secrets",
                            "Init", "Ulimits")


def _tmpfs_bytes(options: str) -> int:
    size = dict(o.split("=", 1) for o in options.split(",") if "=" in o).get("size", "64m")
    return units.parse_bytes(size)


def mounts(policy: Policy) -> list[dict]:
    return [
        {"Type": "bind", "Source": policy.data_dir, "Target": DATA_MOUNT, "ReadOnly": True},
        {"Type": "bind", "Source": policy.workspace, "Target": WORK_MOUNT},  # writable: no ReadOnly (as the API says it)
        *({"Type": "tmpfs", "Target": path, "TmpfsOptions": {"SizeBytes": _tmpfs_bytes(opts), "Mode": 0o1777}}
          for path, opts in sorted(policy.tmpfs.items())),
    ]


def _wanted(policy: Policy) -> dict:
    """The TaskTemplate keys the invariants own, with their values, written as the manager returns
    them in a dispatched task, so the same check serves the request and what the node was given."""
    container = {
        "User": policy.user,
        "ReadOnly": True,
        "CapabilityDrop": ["ALL"],
        "Mounts": mounts(policy),
        "Sysctls": {"net.ipv6.conf.all.disable_ipv6": "1"} if policy.ipv6_kernel else {},
    }
    resources = {
        "Limits": {"MemoryBytes": policy.mem_limit, "NanoCPUs": policy.nano_cpus, "Pids": policy.pids_limit},
        # Memory cannot be shared: the scheduler places a server only where all of it is free. CPU is
        # (notebooks idle most of the time, each capped by its limit), so it is not reserved.
        "Reservations": {"MemoryBytes": policy.mem_limit},
    }
    return {"ContainerSpec": container, "Resources": resources, "RestartPolicy": {"Condition": "none", "MaxAttempts": 0},
            "Networks": [{"Target": policy.network}]}


def harden(task: dict, policy: Policy) -> None:
    """Write the invariants over a (merged) TaskTemplate, in place; placement keeps its other
    constraints and always gains the verified-node one."""
    wanted = _wanted(policy)
    container = task.setdefault("ContainerSpec", {})
    for key in FORBIDDEN_CONTAINER_KEYS:
        container.pop(key, None)
    container.update(wanted["ContainerSpec"])
    task["Resources"], task["RestartPolicy"], task["Networks"] = (
        wanted["Resources"], wanted["RestartPolicy"], wanted["Networks"])
    placement = task.setdefault("Placement", {})
    placement["Constraints"] = sorted({*(placement.get("Constraints") or []), PLACEMENT})


def violations(task: dict, policy: Policy) -> list[str]:
    """What in the final TaskTemplate breaks an invariant (empty list: nothing)."""
    wanted, found = _wanted(policy), []
    container = task.get("ContainerSpec") or {}
    for key, value in wanted["ContainerSpec"].items():
        if container.get(key) != value:
            found.append(f"ContainerSpec[{key!r}] is {container.get(key)!r}, must be {value!r}")
    found += [f"ContainerSpec[{key!r}] is set" for key in FORBIDDEN_CONTAINER_KEYS if container.get(key)]
    for key in ("Resources", "RestartPolicy", "Networks"):
        if task.get(key) != wanted[key]:
            found.append(f"{key} is {task.get(key)!r}, must be {wanted[key]!r}")
    if PLACEMENT not in ((task.get("Placement") or {}).get("Constraints") or []):
        found.append(f"Placement lacks the constraint {PLACEMENT}")
    return found
