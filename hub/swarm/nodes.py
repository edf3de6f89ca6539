"""Which Swarm nodes may run notebook servers: only those seen to harden every container they run.

Swarm services on Docker 20.10 cannot carry `--security-opt` (moby#41371), so no-new-privileges and
the enclave's seccomp profile have to come from each node's daemon (`daemon.json`). A node is not
trusted because a file says so: a one-shot probe task runs on it, as a notebook would, and reports
what its kernel applies (`/proc/self/status`, and whether `ptrace`, which the enclave's profile
removes, is refused). A node that passes gets the label `org.enclave.verified=yes`; one that fails, or
is down, loses it. Notebook services are constrained to that label (`PLACEMENT`), so the scheduler
never places a server on a node that failed or was never checked.

How a hostile party would get around it: a node whose operator edits daemon.json after the check
keeps its label until the next check (the hub checks at start and `enclave swarm check` re-checks);
a researcher cannot set node labels (only a manager's API can, and it is never in a container).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import docker
from docker.types import RestartPolicy

from hub.spawn.hardening import USER

LABEL = "org.enclave.verified"
PLACEMENT = f"node.labels.{LABEL}==yes"
PROBE_NAME = "enclave-nodecheck-"

# What a notebook container must show on a node: no new privileges, a seccomp filter that refuses
# ptrace (Docker's default allows it), no effective capability, the notebook user.
PROBE_SCRIPT = r"""
s=/proc/self/status
echo "nnp=$(sed -n 's/^NoNewPrivs:[[:space:]]*//p' $s)"
echo "seccomp=$(sed -n 's/^Seccomp:[[:space:]]*//p' $s)"
echo "capeff=$(sed -n 's/^CapEff:[[:space:]]*//p' $s)"
echo "uid=$(id -u)"
case "$(uname -m)" in x86_64) n=101;; aarch64) n=117;; *) n=;; esac
if [ -n "$n" ]; then echo "ptrace=$(perl -e "print syscall($n, 0, 0, 0, 0) == -1 ? 'refused' : 'allowed'")"; fi
echo "probe=done"
"""

EXPECTED = {
    "nnp": ("1", "no-new-privileges is not set by the node's daemon (daemon.json \"no-new-privileges\": true)"),
    "seccomp": ("2", "no seccomp filter applies to containers on the node"),
    "capeff": ("0000000000000000", "containers on the node keep capabilities"),
    "uid": (USER.split(":")[0], "the probe did not run as the notebook user"),
    "ptrace": ("refused", ("the node's seccomp profile allows ptrace: it is not the enclave's profile "
                           "(daemon.json \"seccomp-profile\")")),
}
DONE_STATES = {"complete", "failed", "rejected", "shutdown", "orphaned"}


@dataclass
class NodeCheck:
    node_id: str
    hostname: str
    problems: list[str] = field(default_factory=list)

    @property
    def verified(self) -> bool:
        return not self.problems


def read_probe(output: str) -> list[str]:
    """What the probe's output shows wrong; a missing or garbled answer is a problem, never a pass."""
    seen = dict(line.split("=", 1) for line in output.splitlines() if "=" in line)
    if seen.get("probe") != "done":
        return ["the probe did not finish: " + (output.strip()[-300:] or "no output")]
    return [why for key, (want, why) in EXPECTED.items() if seen.get(key, "").strip() != want]


def check_node(client: docker.DockerClient, node, image: str, timeout: float) -> NodeCheck:
    """Run the probe on one node and read its answer; the probe's service is always removed."""
    result = NodeCheck(node.id, node.attrs["Description"]["Hostname"])
    service = client.services.create(
        image, ["sh", "-c", PROBE_SCRIPT], name=PROBE_NAME + node.id[:12],
        constraints=[f"node.id=={node.id}"], restart_policy=RestartPolicy(condition="none"),
        user=USER, read_only=True, cap_drop=["ALL"], labels={"org.enclave.nodecheck": "1"},
    )
    try:
        deadline = time.monotonic() + timeout
        task = None
        while time.monotonic() < deadline:
            tasks = service.tasks()
            task = tasks[0] if tasks else None
            if task and task["Status"]["State"] in DONE_STATES:
                break
            time.sleep(0.5)
        state = task["Status"] if task else {}
        if state.get("State") not in DONE_STATES:
            why = state.get("Err") or state.get("Message", "")
            result.problems.append(
                f"the probe did not run within {timeout:g} s (state {state.get('State', 'none')}: {why})")
        elif "No such image" in (state.get("Err") or ""):
            result.problems.append(f"the node does not hold the image {image[:19]}… as the manager does: load the "
                                   "manager's copy there (`docker save` | `docker load`)")
        elif state.get("State") in ("rejected", "orphaned"):
            result.problems.append(f"the probe could not run: {state.get('Err') or state.get('Message')}")
        else:
            output = b"".join(service.logs(stdout=True, stderr=True, follow=False)).decode(errors="replace")
            result.problems += read_probe(output)
    finally:
        service.remove()
    return result


def verify_all(client: docker.DockerClient, image: str, timeout: float) -> list[NodeCheck]:
    """Check every node and label it: `yes` for a ready node that passed; none for the rest.

    The probe runs `image` by the ID it has on the manager, so a node passes only if it holds the
    same bytes (there is no registry to pin a digest against; the ID is the hash of the image)."""
    image_id = client.images.get(image).id  # ImageNotFound: the manager must hold it first
    for stale in client.services.list(filters={"label": "org.enclave.nodecheck"}):
        stale.remove()  # a check cut short earlier
    results = []
    for node in sorted(client.nodes.list(), key=lambda n: n.attrs["Description"]["Hostname"]):
        spec, status = node.attrs["Spec"], node.attrs["Status"]
        if status.get("State") != "ready" or spec.get("Availability") != "active":
            check = NodeCheck(node.id, node.attrs["Description"]["Hostname"],
                              [f"node is {status.get('State')} and {spec.get('Availability')}"])
        else:
            check = check_node(client, node, image_id, timeout)
        _label(node, check.verified)
        results.append(check)
    return results


def _label(node, verified: bool) -> None:
    node.reload()
    spec = dict(node.attrs["Spec"])
    labels = dict(spec.get("Labels") or {})
    if verified == (labels.get(LABEL) == "yes"):
        return
    if verified:
        labels[LABEL] = "yes"
    else:
        labels.pop(LABEL, None)
    spec["Labels"] = labels
    node.update(spec)
