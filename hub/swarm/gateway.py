"""The one path between the hub's host and notebook servers on other nodes of a swarm.

The hub runs on its host, not in a container, so it has no leg on an overlay network. Each notebook
server gets an overlay network of its own (`server_network`): internal, so no route out, and with two
members only, the server and the project gateway. The gateway is a HAProxy container on the manager
(images/gateway), also on a bridge of the hub's host whose name carries the enclave's prefix, so the
host firewall treats it like a project bridge (hub.spawn.firewall). On every server network it is
named `hub`, and it passes on:

- from servers: the hub API (and the package index), to the hub's host on the bridge;
- from the hub's host: one port per server, bound on the bridge address only, to that server's
  notebook port, found by the service's name on the server's own network.

How a researcher would get around it: a notebook reaches only its own network, where the gateway
listens on the hub's ports alone; the per-server ports are bound on the bridge, for which a notebook
has no route; another server, another node, the outside are on no network it has. Everything between
the nodes and the hub crosses the hub's host, where the guard's meters and the firewall already are.
"""

from __future__ import annotations

import gzip
import os
import re
from dataclasses import dataclass
from pathlib import Path

HUB_ALIAS = "hub"  # the gateway's name on every server network
NOTEBOOK_PORT = 8888
_SAFE = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class Route:
    """One server behind the gateway: the hub's host reaches it on `port` of the bridge address."""

    key: str  # the server's opaque key (its guard key)
    service: str  # the service's name, resolved on its own network
    port: int


def overlay_encryption(config_gz: Path = Path("/proc/config.gz")) -> tuple[bool, str]:
    """Can Docker encrypt overlay traffic here (`--opt encrypted` needs IPsec ESP in the kernel)?
    Returns (possible, a sentence for the operator). Unknown counts as not possible."""
    try:
        with gzip.open(config_gz, "rt") as f:
            config = f.read()
    except OSError:
        return False, ("overlay encryption: unknown (no /proc/config.gz): servers' networks are not encrypted "
                       "between nodes; keep the nodes on a private network")
    setting = re.search(r"^CONFIG_INET_ESP=([ym])$", config, re.MULTILINE)
    if setting and (setting.group(1) == "y" or _module_present("esp4")):
        return True, "overlay encryption: on (the kernel has IPsec ESP)"
    return False, ("overlay encryption: NOT available (the kernel has no IPsec ESP): traffic between nodes "
                   "is not encrypted by Docker; keep the nodes on a private network or a VPN")


def _module_present(name: str) -> bool:
    root = Path("/lib/modules") / os.uname().release
    return any(root.rglob(f"{name}.ko*")) if root.is_dir() else False


def server_network_options(key: str, encrypted: bool) -> dict:
    """docker-py `networks.create` arguments for one server's overlay network."""
    options = {"encrypted": ""} if encrypted else {}
    return dict(driver="overlay", internal=True, attachable=True, options=options,
                labels={"org.enclave.server": key})


def haproxy_config(bridge_ip: str, hub_ip: str, forwarded_ports: list[int], routes: list[Route]) -> str:
    """The gateway's whole configuration: the hub's ports toward the hub's host, and each route."""
    for value in [bridge_ip, hub_ip, *(r.service for r in routes), *(r.key for r in routes)]:
        if not _SAFE.match(value):
            raise ValueError(f"refusing an unsafe name in the gateway's configuration: {value!r}")
    lines = [
        "global", "    log stderr format short local0 notice", "",
        "defaults", "    mode tcp", "    log global", "    timeout connect 5s",
        "    timeout client 2h", "    timeout server 2h", "",
        "resolvers docker", "    nameserver dns 127.0.0.11:53", "    hold valid 5s", "",
    ]
    for port in forwarded_ports:
        lines += [f"listen hub_{port}", f"    bind *:{port}", f"    server hub {hub_ip}:{port}", ""]
    for r in sorted(routes, key=lambda r: r.port):
        lines += [f"listen nb_{r.key}", f"    bind {bridge_ip}:{r.port}",
                  f"    server nb {r.service}:{NOTEBOOK_PORT} resolvers docker init-addr none", ""]
    return "\n".join(lines)
