"""One internal Docker network per project: names, and creating it on first use.

Internal (Docker adds no route out and publishes no ports), inter-container traffic off (two
researchers in one project cannot reach each other's servers), and a Linux bridge whose name starts
with the site's bridge prefix so the host firewall (hub.spawn.firewall) can match every project bridge.
All Docker calls go through the `docker(method, *args, **kwargs)` coroutine the spawner provides
(ProjectSpawner's thread pool): the one seam for Docker.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Awaitable, Callable

from docker.errors import APIError, NotFound

DockerCall = Callable[..., Awaitable]

IFNAMSIZ = 15  # Linux interface names are at most 15 bytes
LABEL = "org.enclave.project"


def network_name(prefix: str, slug: str) -> str:
    return f"{prefix}{slug}"


def container_name(prefix: str, key: bytes, username: str, slug: str) -> str:
    """`<prefix>-<20 hex>`: stable for a (user, project), and saying nothing about either.

    Docker's DNS on a project network answers every container's name to every other container on it,
    so a name like `enclave-alice--cancer` would tell a neighbour who works on what. The name is a
    keyed hash (the key lives in state_dir), so it cannot be confirmed by guessing names either.
    """
    digest = hmac.new(key, f"{username}\0{slug}".encode(), hashlib.sha256).hexdigest()[:20]
    return f"{prefix}-{digest}"


def bridge_name(prefix: str, slug: str) -> str:
    """`<prefix><start of slug>-<4 hex of its hash>`: readable, unique per slug, at most 15 chars."""
    digest = hashlib.sha256(slug.encode()).hexdigest()[:4]
    room = IFNAMSIZ - len(prefix) - 5
    if room < 1:
        raise ValueError(f"bridge prefix '{prefix}' leaves no room for the project name (max 8 chars)")
    return f"{prefix}{slug[:room].rstrip('-')}-{digest}"


def create_options(slug: str, bridge_prefix: str) -> dict:
    """Keyword arguments for docker-py's `create_network` (shown in tests and docs)."""
    return dict(
        driver="bridge",
        internal=True,
        check_duplicate=True,
        options={
            "com.docker.network.bridge.name": bridge_name(bridge_prefix, slug),
            "com.docker.network.bridge.enable_icc": "false",
            "com.docker.network.bridge.enable_ip_masquerade": "false",
        },
        labels={LABEL: slug},
    )


def gateway_of(info: dict) -> str:
    for cfg in (info.get("IPAM") or {}).get("Config") or []:
        if cfg.get("Gateway"):
            return cfg["Gateway"].split("/")[0]
    raise RuntimeError(f"Docker network {info.get('Name')} has no gateway address")


def check_network(info: dict, slug: str, bridge_prefix: str) -> None:
    """Refuse to use a network of the right name that lacks the isolation we rely on."""
    opts = info.get("Options") or {}
    expected = create_options(slug, bridge_prefix)["options"]
    problems = []
    if not info.get("Internal"):
        problems.append("it is not internal")
    if opts.get("com.docker.network.bridge.enable_icc") != "false":
        problems.append("inter-container traffic is on")
    if opts.get("com.docker.network.bridge.name") != expected["com.docker.network.bridge.name"]:
        problems.append("its bridge is not named with the enclave prefix (the firewall would miss it)")
    if problems:
        raise RuntimeError(
            f"Docker network {info.get('Name')} exists but {', '.join(problems)}; remove it "
            f"(`docker network rm {info.get('Name')}`) and start again so the enclave recreates it"
        )


class NoAddressPool(RuntimeError):
    """Docker has no free subnet left for another network (its default pools hold ~30 networks)."""


_locks: dict[str, asyncio.Lock] = {}


async def ensure_project_network(docker: DockerCall, slug: str, network_prefix: str, bridge_prefix: str) -> str:
    """Create the project's network if needed; return its gateway address (where the hub API is)."""
    name = network_name(network_prefix, slug)
    lock = _locks.setdefault(name, asyncio.Lock())
    async with lock:
        try:
            info = await docker("inspect_network", name)
        except NotFound:
            try:
                await docker("create_network", name, **create_options(slug, bridge_prefix))
            except APIError as exc:
                if "address pool" in str(exc.explanation or exc):
                    raise NoAddressPool(
                        f"Docker has no free address pool for network {name}: close finished projects "
                        "(`enclave project close` removes their networks) or give Docker more, smaller pools "
                        "(default-address-pools in /etc/docker/daemon.json; see docs/spawner.md)"
                    ) from exc
                if exc.status_code != 409:  # 409: another hub process created it first
                    raise
            info = await docker("inspect_network", name)
        check_network(info, slug, bridge_prefix)
        return gateway_of(info)


def remove_project_network(client, network_prefix: str, slug: str) -> str:
    """Remove a closed project's network (docker-py client, from the CLI): what happened, in words.

    Docker's address pools are finite, so networks of finished projects are given back. A network
    that still has containers attached is kept (removing it would fail anyway) and said so.
    """
    name = network_name(network_prefix, slug)
    try:
        net = client.networks.get(name)
    except NotFound:
        return f"project network {name} was already gone"
    attached = net.attrs.get("Containers") or {}
    if attached:
        return (f"project network {name} kept: {len(attached)} container(s) still attached; remove it with "
                f"`docker network rm {name}` once they are stopped")
    try:
        net.remove()
    except NotFound:
        return f"project network {name} was already gone"
    except APIError as exc:
        return f"project network {name} kept: {exc.explanation or exc}"
    return f"removed project network {name}"
