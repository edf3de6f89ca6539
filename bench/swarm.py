"""Spawn latency on a swarm against one host: login to a ready server, for one person and for twenty
at once, measured side by side in one run.

Two real hubs on this machine, each with its own site: one starts servers on this host (the default),
the other (`[swarm] enabled`) on a swarm whose manager is this host's engine and whose two workers are
dockerd containers (tests/support/swarm.py) holding the same image and sharing the hub's folders. The
single starts alternate between the two, so both see the same load on this shared machine; then twenty
people start at once on one host, then twenty on the swarm. Targets (issue 16): the swarm's p50 at
most 1.3x one host's for one person, 2x for twenty.

The workers run on the same two cores as everything else, so the swarm here pays for its scheduling,
its overlay network and each server's gateway, and has no more CPU than one host: what the ratio
shows is the enclave's overhead of going through a swarm, not the capacity more nodes would add.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from pathlib import Path

import docker

from bench._stats import pct
from bench.spawn import _login_to_ready
from tests.support.env import make_env
from tests.support.spawn import SpawnSite, notebook_image
from tests.support.swarm import SwarmLab, gateway_image

ROUNDS_ONE = int(os.environ.get("BENCH_SWARM_ROUNDS", "5"))
CROWD = int(os.environ.get("BENCH_SWARM_CROWD", "20"))


def _crowd(site: SpawnSite, hub, users, slug) -> list[float]:
    out: list[float] = []
    threads = [threading.Thread(target=lambda u=u: out.append(_login_to_ready(site, hub, u, slug, stop=False)))
               for u in users]
    [t.start() for t in threads]
    [t.join() for t in threads]
    if len(out) != len(users):
        raise RuntimeError(f"only {len(out)} of {len(users)} simultaneous starts succeeded:\n{hub.logs()[-3000:]}")
    return out


def _wait_gone(client, slug: str, timeout: float = 120) -> None:
    """Until the stopped servers of `slug` are gone (containers on one host, services on the swarm)."""
    deadline = time.monotonic() + timeout
    label = f"org.enclave.project={slug}"
    while time.monotonic() < deadline:
        if not client.containers.list(all=True, filters={"label": label}) and not (
                client.info()["Swarm"]["LocalNodeState"] == "active"
                and client.services.list(filters={"label": label})):
            return
        time.sleep(0.2)


def run() -> list[dict]:
    client = docker.from_env()
    with tempfile.TemporaryDirectory(prefix="enclave-bench-swarm-") as tmp:
        envs = {}
        for kind in ("one host", "swarm"):  # each hub its own settings, state (guard routes) and database
            folder = Path(tmp) / kind.replace(" ", "-")
            folder.mkdir()
            envs[kind] = make_env(folder)
        previous = os.environ.get("ENCLAVE_CONFIG")
        lab = SwarmLab(client, Path(tmp) / "nodes")
        sites: dict[str, SpawnSite] = {}
        try:
            image = notebook_image(envs["swarm"].settings)
            lab.workers_for(envs["swarm"], image)
            times: dict[str, dict[str, list[float]]] = {}
            hubs, people, slugs = {}, {}, {}
            for kind, extra in (("one host", {}), ("swarm", {"swarm": {"enabled": True,
                                                                         "gateway_image": gateway_image(client)}})):
                os.environ["ENCLAVE_CONFIG"] = str(envs[kind].config)  # the site's users and projects
                site = sites[kind] = SpawnSite(envs[kind], client, image=image, mem_limit="512M", cpu_limit=1.0,
                                               start_timeout=300)
                solo = [site.user(f"s{i}x") for i in range(ROUNDS_ONE)]
                crowd = [site.user(f"c{i}x") for i in range(CROWD)]
                slugs[kind] = site.project("bench", members=solo + crowd)
                people[kind] = (solo, crowd)
                hubs[kind] = site.hub(settings=extra).start()
                times[kind] = {"one": [], "crowd": []}
            for i in range(ROUNDS_ONE):
                for kind, hub in hubs.items():
                    times[kind]["one"].append(_login_to_ready(sites[kind], hub, people[kind][0][i], slugs[kind]))
                    _wait_gone(client, slugs[kind])
            for kind, hub in hubs.items():
                times[kind]["crowd"] = _crowd(sites[kind], hub, people[kind][1], slugs[kind])
                hub.stop()  # its servers are removed at cleanup; the next crowd starts on a quiet machine
                for box in client.containers.list(all=True, filters={"label": f"org.enclave.project={slugs[kind]}"}):
                    box.remove(force=True)
                if kind == "swarm":
                    for svc in client.services.list(filters={"label": f"org.enclave.project={slugs[kind]}"}):
                        svc.remove()
        finally:
            for site in sites.values():
                for svc in (client.services.list(filters={"label": "org.enclave.user"})
                            if client.info()["Swarm"]["LocalNodeState"] == "active" else []):
                    svc.remove()
                site.cleanup()
            lab.cleanup()
            if previous is None:
                os.environ.pop("ENCLAVE_CONFIG", None)
            else:
                os.environ["ENCLAVE_CONFIG"] = previous
    rows = []
    for key, label, target in (("one", "1 user", 1.3), ("crowd", f"{CROWD} users at once", 2.0)):
        for kind in ("one host", "swarm"):
            for q in (50, 95):
                rows.append({"benchmark": "swarm", "metric": f"login to ready, {label}, {kind}, p{q}",
                             "value": round(pct(times[kind][key], q), 2), "unit": "s", "target": ""})
        rows.append({"benchmark": "swarm", "metric": f"p50 ratio swarm / one host, {label}",
                     "value": round(pct(times["swarm"][key], 50) / pct(times["one host"][key], 50), 2),
                     "unit": "x", "target": f"<= {target}"})
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)
