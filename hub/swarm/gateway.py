"""The one path between the hub's host and a notebook server on another node of a swarm.

The hub runs on its host, not in a container, so it has no leg on an overlay network. Each notebook
server gets an overlay network of its own (`server_network_options`): internal, so no route out, with
two members, the server and its gateway. The gateway is a HAProxy container on the hub's host
(images/gateway), also on the project's bridge there, where a server container sits on one host. On
the server's network it is named `hub`, and it passes on:

- from the server: the hub API (and the package index) to the hub's host, as a container's own
  connections on one host (the host firewall admits the hub's ports from project bridges);
- from the hub's host: the notebook port (8888) to the server, found by its service name.

So for the hub's host a gateway is what a server container is on one host: an address on the
project bridge answering on 8888. The host guard meters, paces and caps it by that address, the
guard's proxy routes to it, and the firewall treats it as a project container, all unchanged.

How a researcher would get around it: the notebook reaches only its own network, where the gateway
is the one other member and passes only the hub's ports (and its own notebook port back to itself);
another server, another node and the outside are on no network it has. One gateway per server, so
no two servers share a path, and everything between nodes and the hub crosses the hub's host.
"""

from __future__ import annotations

import gzip
import os
import re
from pathlib import Path

from hub.guard.meter import SERVER_PORT

HUB_ALIAS = "hub"  # the gateway's name on every server network
NOTEBOOK_PORT = SERVER_PORT  # what the server listens on and the gateway passes on
GATEWAY_MEMORY = 64 << 20
_SAFE = re.compile(r"^[A-Za-z0-9_.-]+$")


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


def haproxy_config(hub_ip: str, forwarded_ports: list[int], service: str) -> str:
    """One gateway's whole configuration: the hub's ports toward the hub's host, and the notebook
    port toward the server (by its service name, resolved on the server's own network)."""
    for value in (hub_ip, service):
        if not _SAFE.match(value):
            raise ValueError(f"refusing an unsafe name in the gateway's configuration: {value!r}")
    lines = [
        "global", "    log stderr format short local0 notice", "",
        "defaults", "    mode tcp", "    log global", "    timeout connect 5s",
        "    timeout client 2h", "    timeout server 2h", "",
        # Docker's DNS knows the server's name once its task runs; HAProxy holds a "no such name"
        # for 30 s by default, which would add half a minute to every start.
        "resolvers docker", "    nameserver dns 127.0.0.11:53", "    timeout resolve 500ms", "    timeout retry 500ms",
        "    hold valid 5s", "    hold nx 500ms", "    hold other 500ms", "    hold refused 500ms",
        "    hold timeout 500ms", "    hold obsolete 5s", "",
    ]
    for port in forwarded_ports:
        lines += [f"listen hub_{port}", f"    bind *:{port}", f"    server hub {hub_ip}:{port}", ""]
    lines += ["listen notebook", f"    bind *:{NOTEBOOK_PORT}",
              f"    server nb {service}:{NOTEBOOK_PORT} resolvers docker init-addr none", ""]
    return "\n".join(lines)


def host_config(bridge_network: str) -> dict:
    """docker-py `create_host_config` arguments of a gateway: as locked down as a notebook container
    (the HAProxy user, no capability, no new privileges, read-only root), small, on the project bridge."""
    return dict(read_only=True, cap_drop=["ALL"], security_opt=["no-new-privileges"], mem_limit=GATEWAY_MEMORY,
                pids_limit=64, tmpfs={"/tmp": "size=4m,mode=1777"}, network_mode=bridge_network, init=False)
