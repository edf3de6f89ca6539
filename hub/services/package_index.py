"""Registers and runs the package index (hub.packages.index) as a JupyterHub managed service.

It listens on every address at `[packages] index_port` so each project gateway reaches it; the host
firewall (hub.spawn.firewall) accepts that port only from a project bridge to its own gateway, and
from loopback. It needs no hub API scope: it reads the enclave database and Docker's networks.
"""

from __future__ import annotations

import sys

from hub.hubconfig import register_service

SERVICE = "package-index"


def configure(c, s) -> None:
    if s.packages.enabled:
        register_service(c, s, {"name": SERVICE, "command": [sys.executable, "-m", "hub.services.package_index"]})


def main() -> None:
    import argparse
    import logging

    import docker
    from aiohttp import web

    from enclave import settings as settings_mod

    from hub.packages.gateways import ProjectsByGateway
    from hub.packages.index import make_app

    argparse.ArgumentParser(prog="package-index", description=__doc__).parse_args()
    logging.basicConfig(level=logging.INFO, format=f"[%(levelname).1s %(asctime)s {SERVICE}] %(message)s")
    s = settings_mod.load()
    project_of = ProjectsByGateway(docker.from_env(), s.spawner.network_prefix)

    async def app():
        return make_app(s.database_url, s.state_dir, project_of)

    web.run_app(app(), host="0.0.0.0", port=s.packages.index_port, access_log=None, print=None)


if __name__ == "__main__":
    main()
