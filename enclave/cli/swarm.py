"""`enclave swarm check`: which Swarm nodes may run notebook servers (hub.swarm.nodes).

Talks to the swarm's manager engine (DOCKER_HOST, else the local socket); every node is probed, and
labelled for notebooks only when it passed. Exit 0: every node passed; 1: one or more refused."""

from __future__ import annotations

import docker

from enclave import audit, db
from enclave.cli.context import load
from enclave.cli.util import actor

from hub.swarm import gateway, nodes


def register(sub) -> None:
    p = sub.add_parser("swarm", help="notebook servers across a Docker Swarm")
    s = p.add_subparsers(dest="swarm_cmd", required=True)
    c = s.add_parser("check", help="probe every node's container hardening; label the nodes that pass")
    c.add_argument("--image", help="image the probe runs (default: the notebook image, [spawner] image)")
    c.set_defaults(func=_check)


def _check(args) -> int:
    s = load(args)
    client, image = docker.from_env(), args.image or s.spawner.image
    try:
        results = nodes.verify_all(client, image, s.swarm.check_timeout_seconds)
    except docker.errors.ImageNotFound:
        print(f"enclave: error: the manager does not hold the image {image} (`enclave image ensure`, or load it)")
        return 2
    except docker.errors.APIError as exc:
        print(f"enclave: error: the engine cannot run the check (is it a swarm manager?): {exc.explanation}")
        return 2
    with db.transaction(s.database_url) as session:
        for r in results:
            audit.record(session, actor(), "swarm.node_verified" if r.verified else "swarm.node_refused",
                         r.hostname, {"node": r.node_id, "problems": r.problems})
    for r in results:
        print(f"{r.hostname}: verified" if r.verified else f"{r.hostname}: REFUSED")
        for problem in r.problems:
            print(f"  - {problem}")
    print(gateway.overlay_encryption()[1])
    return 0 if all(r.verified for r in results) else 1
