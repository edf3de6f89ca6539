"""SwarmProjectSpawner: the project spawner (hub.spawn.spawner) with the server on a swarm node.

Everything before and after the container is the single-host spawner's, unchanged: who may start
(enclave.permissions), the project bridge on the hub's host, the workspace, the host guard, the
proxy route, the audit. Only the server itself moves:

- it is a Swarm service (dockerspawner's SwarmSpawner) written by hub.swarm.service over whatever
  configuration merged in and checked, placed by the scheduler from its reservations on a node
  `enclave swarm check` verified, running the manager's image by ID (the same bytes everywhere);
- it sits alone on an overlay network of its own with its gateway (hub.swarm.gateway), a container
  on the project bridge of the hub's host. To the hub, the guard and the firewall, the gateway's
  address is the server's address, as a container's is on one host;
- once its task runs, the task the manager dispatched is checked again against the invariants.

A server is running while its task runs on a node that is up and its gateway runs. A node that goes
away takes its servers with it: `poll()` reports them stopped, the guard is released and the stop
recorded (hub.spawn.spawner's post-stop hook), and a new start lands on another verified node.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pprint import pformat

import docker.errors
from dockerspawner import SwarmSpawner
from dockerspawner.dockerspawner import _deep_merge
from traitlets import Bool

from enclave import network
from enclave.errors import HostFault, Unavailable

from hub.guard.meter import SERVER_PORT
from hub.spawn.spawner import ProjectSpawner
from hub.swarm import gateway, service

GATEWAY_ATTEMPTS = 3  # starts of a gateway whose overlay attachment timed out
PLACEMENT_WAIT = 15  # seconds a task may wait for a node with room before the start is refused
STARTING = {"new", "allocated", "pending", "assigned", "accepted", "preparing", "ready", "starting"}


class SwarmProjectSpawner(ProjectSpawner, SwarmSpawner):
    """ProjectSpawner whose notebook server is a Swarm service behind a gateway on the hub's host."""

    # SwarmSpawner makes `remove` a plain True, so the hub's `c.ProjectSpawner.remove` warned at every
    # start; a stopped server's service, gateway and network are always removed.
    remove = Bool(True, config=True, help="Always true on a swarm: a stopped server leaves nothing behind.")

    @property
    def server_network(self) -> str:
        return f"{self.object_name}-net"

    @property
    def gateway_name(self) -> str:
        return f"{self.object_name}-gw"

    def _labels(self) -> dict:
        return {network.LABEL: self.name, "org.enclave.user": self.user.name}

    def host_memory_need(self, facts: dict) -> int:
        """Only the gateway runs on the hub's host; the scheduler places the server where it has room."""
        return gateway.GATEWAY_MEMORY

    def _forwarded_ports(self) -> list[int]:
        s = self.enclave_settings
        return [s.hub.api_port] + ([s.packages.index_port] if s.packages.enabled else [])

    async def create_object(self):
        """The server's network, its service (hardened, checked) and its gateway; returns the service."""
        hub_side = self._gateway  # the project bridge's gateway address: the hub's host
        await self._remove_parts()  # what a server that ended on its own left behind
        encrypted, _ = gateway.overlay_encryption()
        net = await self.docker("create_network", self.server_network, check_duplicate=True, scope="swarm",
                                **gateway.server_network_options(self.guard_key, encrypted))
        self._policy = dataclasses.replace(self._policy, network=net["Id"])
        self._gateway = gateway.HUB_ALIAS  # the notebook reaches the hub (and its package index) as `hub`
        self.hub_connect_url = f"http://{gateway.HUB_ALIAS}:{self.enclave_settings.hub.api_port}"
        try:
            image_id = (await self.docker("inspect_image", self.image))["Id"]
        except docker.errors.ImageNotFound:
            raise HostFault(f"The notebook image {self.image} is not on the swarm's manager; tell an administrator.",
                            reason="image_missing") from None
        task = {"ContainerSpec": {"Image": image_id, "Args": await self.get_command(), "Labels": self._labels(),
                                  "Env": [f"{k}={v}" for k, v in self.get_env().items()],
                                  # Swarm holds a task in "starting" until the image's first health check
                                  # (30 s in); the hub's own readiness check (every 50 ms) stands in for it.
                                  "HealthCheck": {"Test": ["NONE"]}}}
        _deep_merge(task, await self._resolve(self.extra_task_spec))
        service.harden(task, self._policy)
        problems = service.violations(task, self._policy)
        if problems:  # cannot happen unless harden() is broken: fail closed
            raise HostFault("service configuration rejected: " + "; ".join(problems), reason="hardening_rejected")
        # The gateway first: the server asks the hub for its version as soon as it starts, and gives
        # up after five tries when `hub` does not answer.
        await self._start_gateway(hub_side, net["Id"])
        return await self.docker("create_service", task, name=self.object_name, labels=self._labels(),
                                 endpoint_spec={"Mode": "dnsrr"})  # no IPVS needed, none here

    async def _start_gateway(self, hub_side: str, server_network: str) -> None:
        s = self.enclave_settings
        config = gateway.haproxy_config(hub_side, self._forwarded_ports(), self.object_name)
        try:
            box = await self.docker(
                "create_container", s.swarm.gateway_image, name=self.gateway_name, labels=self._labels(),
                environment={"GATEWAY_CONFIG": config},
                host_config=self.client.create_host_config(**gateway.host_config(self.network_name)),
            )
        except docker.errors.ImageNotFound:
            raise HostFault(f"The gateway image {s.swarm.gateway_image} is not built on the hub's host "
                            "(enclave image gateway); tell an administrator.", reason="gateway_missing") from None
        await self.docker("connect_container_to_network", box["Id"], server_network, aliases=[gateway.HUB_ALIAS])
        for attempt in range(GATEWAY_ATTEMPTS):
            try:
                await self.docker("start", box["Id"])
                return
            except docker.errors.APIError as exc:
                # A busy manager (twenty starts at once on two cores) can time out attaching a container
                # to an overlay network; the next attempt finds it ready.
                if "attaching to network failed" not in str(exc) or attempt == GATEWAY_ATTEMPTS - 1:
                    raise
                self.log.warning("gateway of %s: %s; trying again", self.object_name, exc)
                await asyncio.sleep(1 + attempt)

    async def start_object(self):
        """Wait until the server's task runs (short polls: SwarmSpawner backs off to 11 s), then check
        the task the manager dispatched; a task that cannot be placed or fails is a clear refusal."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.start_timeout
        unplaced_until = loop.time() + PLACEMENT_WAIT
        while True:
            task = await self.get_task()
            state = task["Status"]["State"] if task else "gone"
            if state == "running":
                break
            unplaced = state == "pending" and loop.time() > unplaced_until
            if state not in STARTING or unplaced or loop.time() > deadline:
                message = (task or {}).get("Status", {}).get("Err") or (task or {}).get("Status", {}).get("Message")
                self.log.error("service %s did not run: %s %s", self.object_name, state, message)
                await self._remove_parts()
                if state == "pending":  # the scheduler found no verified node with room
                    raise Unavailable("No notebook node has room for this server now; try again later or tell "
                                      "an administrator.", detail=f"pending: {message}", reason="no_node")
                raise HostFault("The notebook server could not start on its node; tell an administrator.",
                                detail=f"{state}: {message}", reason="node_failed")
            await asyncio.sleep(self.ready_poll_seconds * 4)
        problems = service.violations(task["Spec"], self._policy)
        if problems:
            await self._remove_parts()
            self.log.error("dispatched task breaks invariants: %s", problems)
            raise HostFault("the notebook server did not get its security settings; tell an administrator",
                            detail=f"dispatched task breaks invariants: {problems}", reason="hardening_missing")

    async def get_ip_and_port(self):
        """The gateway's address on the project bridge: what the guard meters and the proxy reaches."""
        info = await self.docker("inspect_container", self.gateway_name)
        return info["NetworkSettings"]["Networks"][self.network_name]["IPAddress"], SERVER_PORT

    async def poll(self):
        """Running while the task runs on a node that is up and the gateway runs."""
        task = await self.get_task()
        if task is None:
            return 0
        if task["Status"]["State"] not in STARTING | {"running"}:
            return pformat(task["Status"])
        if task.get("NodeID"):
            node = await self.docker("inspect_node", task["NodeID"])
            if node["Status"]["State"] != "ready":
                self.log.warning("node of %s is %s", self.object_name, node["Status"]["State"])
                return f"node {node['Status']['State']}"
        try:
            box = await self.docker("inspect_container", self.gateway_name)
        except docker.errors.NotFound:
            return "gateway gone"
        return None if box["State"]["Running"] else "gateway stopped"

    async def remove_object(self):
        await self._remove_parts()

    async def _remove_parts(self) -> None:
        """Service, gateway and network, whichever exist (also after the server ended on its own)."""
        for method, name in (("remove_service", self.object_name), ("remove_container", self.gateway_name)):
            try:
                await self.docker(method, name, **({"force": True} if method == "remove_container" else {}))
            except docker.errors.NotFound:
                pass
        for _ in range(50):  # the network is in use until the node has removed the task's endpoint
            try:
                await self.docker("remove_network", self.server_network)
                return
            except docker.errors.NotFound:
                return
            except docker.errors.APIError as exc:
                if "not found" in str(exc):  # (a swarm network being removed answers 500, not 404)
                    return
                if "in use" not in str(exc) and "active endpoints" not in str(exc):
                    raise
            await asyncio.sleep(0.2)
        self.log.warning("network %s still in use; removed at the next start", self.server_network)

    def run_post_stop_hook(self):
        """Also after a server that ended on its own (its node gone): its gateway and network go too."""
        result = super().run_post_stop_hook()
        return self._after_stop(result)

    async def _after_stop(self, result):
        if asyncio.iscoroutine(result):
            await result
        if self.name:
            try:
                await self._remove_parts()
            except docker.errors.APIError as exc:  # the next start removes them
                self.log.warning("cleaning up %s: %s", self.object_name, exc)


def configure(c, s) -> None:
    """[swarm] enabled: servers go to the swarm; say at start-up whether overlays can be encrypted."""
    import sys

    if not s.swarm.enabled:
        return
    c.JupyterHub.spawner_class = "hub.swarm.spawner.SwarmProjectSpawner"
    print(f"enclave: swarm: {gateway.overlay_encryption()[1]}", file=sys.stderr)
