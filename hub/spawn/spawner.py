"""ProjectSpawner: one hardened notebook container per (user, project), on the project's own network.

The named server's name is the project slug. Before anything touches Docker, `start()` asks the
enclave database whether this person may work in this project today (enclave.permissions) and whether the
host has memory to spare (hub.spawn.admission); a refusal is an HTTP 403/503 whose message the person sees.
Then: the project network (enclave.network) and its gateway, which becomes this server's hub API address;
the workspace folder; and a container whose security invariants (hub.spawn.hardening) are written over any
`extra_*` configuration and checked on the created container before it starts. Once it runs, the host
guard (hub.guard) meters and bounds what it sends, and the hub's proxy reaches it only through the
guard's proxy; at stop, the guard's last count is recorded.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker.errors
from dockerspawner import DockerSpawner
from dockerspawner.dockerspawner import _deep_merge
from sqlalchemy import select
from tornado import web
from tornado.httpclient import AsyncHTTPClient
from traitlets import Any, Float, Integer, default

from enclave import audit, clock, db, network, paths, permissions, secrets_store, units, volumes
from enclave.errors import EnclaveError, HostFault, PermissionDenied, Unavailable
from enclave.models import Account, GuardedServer, Project

from hub.guard import ledger, proxy
from hub.guard.meter import SERVER_PORT, GuardError, Meter
from hub.hubconfig import config_list
from hub.packages import container as package_container
from hub.spawn import admission, firewall
from hub.spawn.hardening import GID, UID, Policy, harden, inspect_violations, tmpfs_options, violations

CONTAINER_NAME_KEY = "container_names.key"


class ProjectSpawner(DockerSpawner):
    """DockerSpawner that starts a project's notebook only when the enclave allows it."""

    enclave_settings = Any(
        config=True,
        help="The enclave's settings (enclave.settings.Settings). Every [spawner] key is read from here, "
        "declared once there with its default and help; set by `configure`.",
    )
    memory_probe = Any(None, help="Seam for admission control (hub.spawn.admission.MemoryProbe).")
    _stop_called = False  # did this stop reach the container (else it had ended on its own)
    _start_recorded = False  # notebook.start recorded, no notebook.stop yet (kept in the spawner's state)

    @property
    def section(self):
        """This site's [spawner] settings."""
        return self.enclave_settings.spawner

    docker_threads = Integer(
        8, config=True,
        help="Docker API calls in flight at once, across all spawns. DockerSpawner uses one thread, so ten "
        "people starting at once queue behind each other's container creates and starts.",
    )
    ready_poll_seconds = Float(0.05, config=True, help="How often start() asks a starting server whether it answers.")

    @property
    def executor(self):
        """One shared pool for every spawner's Docker calls (docker-py's client is safe across threads)."""
        cls = ProjectSpawner
        if cls._executor is None:
            cls._executor = ThreadPoolExecutor(self.docker_threads, thread_name_prefix="docker")
        return cls._executor

    @default("network_name")
    def _project_network(self):
        # Deterministic, so a hub restart that finds a running container still knows its network.
        return network.network_name(self.section.network_prefix, self.name) if self.name else "none"

    @default("object_name")
    def _object_name_default(self) -> str:
        """The container's name: opaque (enclave.network.container_name), never the user's or project's."""
        key = secrets_store.ensure_file(
            Path(self.enclave_settings.state_dir), CONTAINER_NAME_KEY, lambda: secrets.token_hex(32).encode()
        )
        return network.container_name(self.prefix, key, self.user.name, self.name or "")

    @default("use_internal_ip")
    def _internal_ip(self):
        return True  # internal networks publish no ports: the proxy reaches the container directly

    # -- refusals ----------------------------------------------------------------------------
    def _audit(self, action: str, detail: dict) -> None:
        with db.transaction(self.enclave_settings.database_url) as session:
            audit.record(session, self.user.name, action, self.name or "", detail)

    def _refuse(self, exc: EnclaveError) -> web.HTTPError:
        """The one way a start is refused: audited (`notebook.refused`, with the reason code), and shown
        to the person as the error's safe message with its HTTP status (403 refused, 503 busy, 500 host)."""
        self.log.warning("refused %s for %s: %s", self.name or "(default)", self.user.name, exc.detail)
        self._audit("notebook.refused", {"reason": exc.reason, "message": exc.message, "status": exc.status})
        err = web.HTTPError(exc.status, "%s", exc.message)
        err.jupyterhub_message = exc.message  # shown as is on the hub's error page
        return err

    def _project_facts(self) -> dict:
        """Read what the start needs from the enclave database, raising PermissionDenied if not allowed."""
        with db.transaction(self.enclave_settings.database_url) as session:
            account = session.execute(
                select(Account).where(Account.username == self.user.name)
            ).scalar_one_or_none()
            project = session.execute(select(Project).where(Project.slug == self.name)).scalar_one_or_none()
            check_start(session, self.enclave_settings, account, project, self.user.name)
            guard = self.enclave_settings.guard
            return dict(
                slug=project.slug,
                data_dir=project.data_dir,
                mem_limit=project.mem_limit or self.section.mem_limit,
                cpu_limit=project.cpu_limit or self.section.cpu_limit,
                bounds=volumes.bounds_for(project, guard),
                remaining=volumes.remaining(session, clock.today(), self.user.name, project, guard),
            )

    # -- start -------------------------------------------------------------------------------
    async def start(self):
        try:
            return await self._start()
        except EnclaveError as exc:  # every refusal, from any step below (create_object included)
            raise self._refuse(exc) from None

    async def _start(self):
        if not self.name:
            raise PermissionDenied("Notebooks run per project: open one of your projects from the home page.",
                                   reason="no_project")
        facts = self._project_facts()
        admission.check_admission(self.host_memory_need(facts), self.section.memory_reserve, self.memory_probe)
        if self.image not in self.section.allowed_images:
            raise HostFault(f"image {self.image} is not on the allow-list; ask an administrator",
                            reason="image_not_allowed")
        data_dir = Path(facts["data_dir"])
        if not data_dir.is_dir():
            raise HostFault(f"The data folder of project '{self.name}' is missing on the host; tell an administrator.",
                            reason="data_missing")

        try:
            await self.docker("inspect_image", self.image)
        except docker.errors.ImageNotFound:
            raise HostFault(f"The notebook image {self.image} is not built on this host; tell an administrator.",
                            reason="image_missing") from None
        try:
            gateway = await network.ensure_project_network(self.docker, self.name, self.section.network_prefix,
                                                           self.section.bridge_prefix)
        except network.NoAddressPool as exc:
            self.log.error("%s", exc)
            raise Unavailable("No network can be made for this project now: the host has run out of "
                              "network addresses. Tell an administrator.", detail=str(exc),
                              reason="no_address_pool") from None
        self.network_name = network.network_name(self.section.network_prefix, self.name)
        self._gateway = gateway
        self.use_internal_ip = True
        self.hub_connect_url = f"http://{gateway}:{self.enclave_settings.hub.api_port}"
        self.mem_limit = units.parse_bytes(facts["mem_limit"])
        self.cpu_limit = float(facts["cpu_limit"])
        self._policy = Policy(
            data_dir=str(data_dir.resolve()),
            workspace=str(self._ensure_workspace()),
            network=self.network_name,
            mem_limit=self.mem_limit,
            nano_cpus=int(self.cpu_limit * 1e9),
            pids_limit=self.section.pids_limit,
            tmpfs={p: tmpfs_options(p, self.section.tmpfs_size) for p in self.section.tmpfs_paths},
            ipv6_kernel=firewall.ipv6_kernel(),
        )
        self._bounds = facts["bounds"]
        ip, port = await super().start()
        reached_at = self._put_under_guard(ip, facts) if self.enclave_settings.guard.enabled else (ip, port)
        await self._wait_answering(ip, port)
        self._start_recorded = True
        self._audit("notebook.start", {"image": self.image, "mem_limit": self.mem_limit, "cpu_limit": self.cpu_limit,
                                       "guarded": self.enclave_settings.guard.enabled})
        return reached_at

    def host_memory_need(self, facts: dict):
        """What this server takes of the hub host's memory: all of it here (hub.swarm.spawner: its gateway)."""
        return facts["mem_limit"]

    def get_env(self):
        """The hub's variables, and where pip and R find the project's package index (hub.packages)."""
        env = super().get_env()
        packages = self.enclave_settings.packages
        if packages.enabled and getattr(self, "_gateway", None):
            env.update(package_container.environment(self._gateway, packages.index_port))
        return env

    def get_args(self):
        """The server's arguments; terminals off where the project (or site) has them off (second
        layer: the guard's proxy refuses terminal paths for such servers whatever the server does)."""
        args = super().get_args()
        bounds = getattr(self, "_bounds", None)
        if bounds is not None and not bounds.terminals:
            args.append("--ServerApp.terminals_enabled=False")
        return args

    # -- the host guard -------------------------------------------------------------------------
    @property
    def guard_key(self) -> str:
        """Names this server's kernel meters (opaque, like its container name)."""
        return hashlib.sha256(self.object_name.encode()).hexdigest()[:16]

    def _meter(self) -> Meter:
        return Meter(self.enclave_settings.guard.nft_table, self.section.bridge_prefix)

    def _put_under_guard(self, ip: str, facts: dict) -> tuple[str, int]:
        """Meter, pace and cap what the container at `ip` sends; route the hub's proxy to it through the
        guard's proxy. Returns where the hub's proxy must send this server's requests."""
        guard, bounds = self.enclave_settings.guard, facts["bounds"]
        self._release_guard(record=False)  # whatever a crash left under this key
        try:
            self._meter().guard(self.guard_key, ip, burst=bounds.burst_bytes, rate=bounds.sustained_bytes_per_s,
                                cap=facts["remaining"])
        except GuardError as exc:  # the container never answers anyone unguarded (the table fails closed)
            raise HostFault("The host guard could not watch this notebook, so it is not started; tell an "
                            "administrator.", detail=str(exc), reason="guard_failed") from None
        now = clock.now()
        with db.transaction(self.enclave_settings.database_url) as session:
            session.add(GuardedServer(key=self.guard_key, username=self.user.name, project=self.name, ip=ip,
                                      started_at=now, counted_bytes=0, recorded_at=now,
                                      cap_bytes=facts["remaining"], slowed=False))
        proxy.ProxyRoutes(proxy.files_for(self.enclave_settings.state_dir)).route(
            self.user.name, self.name, ip, SERVER_PORT, bounds.terminals)
        return "127.0.0.1", guard.proxy_port

    def _release_guard(self, record: bool = True) -> None:
        """Take the server out of the guard and record its last count (`notebook.egress_volume`, final)."""
        guard = self.enclave_settings.guard
        with db.transaction(self.enclave_settings.database_url) as session:
            row = session.get(GuardedServer, self.guard_key)
            if row is None:
                return
            try:
                reading = self._meter().release(self.guard_key, row.ip)
            except GuardError as exc:  # the record must not stop a stop; the next start replaces the meters
                self.log.error("guard release of %s failed: %s", self.name, exc)
                reading = None
            if record and reading is not None:
                bounds = getattr(self, "_bounds", None)
                ledger.settle(session, row, reading.sent, reading.held_back, record_seconds=guard.record_seconds,
                              burst_bytes=bounds.burst_bytes if bounds else guard.burst_mib * volumes.MIB,
                              final=True)
            session.delete(row)
        proxy.ProxyRoutes(proxy.files_for(self.enclave_settings.state_dir)).unroute(self.user.name, self.name)

    async def _wait_answering(self, ip: str, port: int) -> None:
        """Return as soon as the server answers HTTP (polling every `ready_poll_seconds`).

        The hub's own readiness check backs off exponentially up to 5 s between tries, which alone
        added seconds to every start; after this, its first try succeeds. Gives up quietly (the hub's
        check then reports the failure) if the container stops or start_timeout passes.
        """
        url = f"http://{ip}:{port}{self.server.base_url if self.server else '/'}api"
        client = AsyncHTTPClient()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.start_timeout
        next_poll = loop.time() + 2
        while loop.time() < deadline:
            try:
                response = await client.fetch(url, raise_error=False, follow_redirects=False, request_timeout=2)
                if response.code < 500:
                    return
            except Exception:  # noqa: BLE001 - refused/reset/timeout: not up yet
                pass
            if loop.time() > next_poll:
                if await self.poll() is not None:
                    return
                next_poll = loop.time() + 2
            await asyncio.sleep(self.ready_poll_seconds)

    def _ensure_workspace(self) -> Path:
        ws = paths.workspace(Path(self.enclave_settings.state_dir), self.name, self.user.name)
        ws.parent.mkdir(parents=True, exist_ok=True, mode=0o711)
        ws.mkdir(exist_ok=True, mode=0o700)
        os.chown(ws, UID, GID)
        os.chmod(ws, 0o700)
        if self.enclave_settings.packages.enabled:
            try:
                package_container.ensure_install_folders(ws, UID, GID)
            except OSError as exc:  # the person's own folders; installs then need a kernel restart
                self.log.warning("install folders of %s/%s: %s", self.user.name, self.name, exc)
        return ws

    async def create_object(self):
        """DockerSpawner's create_object, with the invariants applied after every merge and verified."""
        create_kwargs = dict(
            image=self.image,
            environment=self.get_env(),
            name=self.container_name,
            command=(await self.get_command()),
            ports={f"{self.port}/tcp": None},
            labels={network.LABEL: self.name, "org.enclave.user": self.user.name},
        )
        extra_create = await self._resolve(self.extra_create_kwargs)
        extra_host = await self._resolve(self.extra_host_config)
        _deep_merge(create_kwargs, extra_create)
        host_config: dict = {}
        _deep_merge(host_config, extra_host)
        harden(create_kwargs, host_config, self._policy)
        problems = violations(create_kwargs, host_config, self._policy)
        if problems:  # cannot happen unless harden() is broken: fail closed
            raise HostFault("container configuration rejected: " + "; ".join(problems), reason="hardening_rejected")
        create_kwargs["host_config"] = self.client.create_host_config(**host_config)
        obj = await self.docker("create_container", **create_kwargs)
        info = await self.docker("inspect_container", obj["Id"])
        problems = inspect_violations(info, self._policy)
        if problems:
            await self.docker("remove_container", obj["Id"], force=True)
            self.log.error("created container breaks invariants: %s", problems)
            raise HostFault("the notebook container did not get its security settings; tell an administrator",
                            detail=f"created container breaks invariants: {problems}", reason="hardening_missing")
        return obj

    async def _resolve(self, value):
        value = self._eval_if_callable(value)
        if inspect.isawaitable(value):
            value = await value
        return self._render_templates(value or {})

    def run_post_stop_hook(self):
        """Release the guard and record the stop on every stop. JupyterHub calls `stop()` only when
        `poll()` finds the container alive; this hook runs also when it died on its own (out of memory,
        killed, its node gone), so its meters are freed and its last count is still recorded."""
        if self.name:
            if self.enclave_settings.guard.enabled:
                self._release_guard()
            if self._stop_called or self._start_recorded:  # (a refused start never ran: no stop to record)
                self._audit("notebook.stop", {} if self._stop_called else {"ended_on_its_own": True})
        self._stop_called = self._start_recorded = False
        return super().run_post_stop_hook()

    def get_state(self):
        state = super().get_state()
        if self._start_recorded:
            state["start_recorded"] = True
        return state

    def load_state(self, state):
        super().load_state(state)
        self._start_recorded = bool(state.get("start_recorded"))

    async def stop(self, now=False):
        self._stop_called = True
        await super().stop(now=now)


def check_start(session, settings, account, project, username: str) -> None:
    """May this server start now: the spawn rule (enclave.permissions), then today's volume under the
    cap when the guard is on. The home page asks the same, to say why a start would be refused."""
    permissions.check_can_spawn(account, project, clock.today())
    if settings.guard.enabled:
        volumes.check_within_cap(session, clock.today(), username, project, settings.guard)


# -- home page ------------------------------------------------------------------------------------
def home_role(settings):
    """template_vars callable: the person's enclave role, so the home page shows what applies to it."""

    def role_of(user) -> str:
        if user is None or not hasattr(user, "name"):
            return ""
        with db.transaction(settings.database_url) as session:
            account = session.execute(select(Account).where(Account.username == user.name)).scalar_one_or_none()
            return account.role.value if account else ""

    return role_of


def home_projects(settings):
    """template_vars callable: the user's projects with whether they may start and why not."""

    def projects_for(user) -> list[dict]:
        if user is None or not hasattr(user, "name"):
            return []
        from enclave import projects as projects_service

        rows = []
        with db.transaction(settings.database_url) as session:
            account = session.execute(select(Account).where(Account.username == user.name)).scalar_one_or_none()
            for project in projects_service.projects_of(session, user.name):
                try:
                    check_start(session, settings, account, project, user.name)
                    refusal = ""
                except PermissionDenied as exc:
                    refusal = exc.message
                spawner = user.spawners.get(project.slug) if hasattr(user, "spawners") else None
                state = "stopped"
                if spawner is not None:
                    if spawner.pending:
                        state = spawner.pending  # "spawn" or "stop"
                    elif spawner.ready:
                        state = "running"
                rows.append(dict(
                    slug=project.slug, title=project.title, status=project.status.value,
                    end_date=project.end_date.isoformat() if project.end_date else "",
                    refusal=refusal, state=state,
                ))
        return rows

    return projects_for


# -- configuration ---------------------------------------------------------------------------------
def _extend(section, key: str, items: list) -> None:
    """Add to a list setting other configurers may also add to (kept a plain list)."""
    section[key] = config_list(section, key) + items


def configure(c, s) -> None:
    """Spawner, hub API address, idle culler and home page data from the [spawner] settings."""
    import sys

    sp = s.spawner
    c.JupyterHub.spawner_class = "hub.spawn.spawner.ProjectSpawner"
    # Containers reach the hub API on their network's gateway; the firewall limits who may connect.
    c.JupyterHub.hub_bind_url = f"http://0.0.0.0:{s.hub.api_port}"
    c.JupyterHub.hub_connect_url = f"http://127.0.0.1:{s.hub.api_port}"
    c.JupyterHub.named_server_limit_per_user = 0
    c.JupyterHub.redirect_to_server = False  # land on the project list, not a default server
    c.ProjectSpawner.enclave_settings = s
    c.ProjectSpawner.image = sp.image
    c.ProjectSpawner.allowed_images = []  # researchers cannot pick an image
    c.ProjectSpawner.pull_policy = "never"  # no registry: images are built on the host
    c.ProjectSpawner.remove = True  # every start gets the current settings
    c.ProjectSpawner.prefix = sp.network_prefix.rstrip("-_.") or "enclave"
    c.ProjectSpawner.start_timeout = sp.start_timeout
    c.ProjectSpawner.http_timeout = sp.start_timeout

    c.JupyterHub.template_vars = {**dict(c.JupyterHub.get("template_vars") or {}),
                                  "enclave_projects": home_projects(s), "enclave_role": home_role(s)}

    _extend(c.JupyterHub, "services", [{
        "name": "idle-culler",
        "command": [sys.executable, "-m", "jupyterhub_idle_culler", f"--timeout={sp.idle_timeout}"],
    }])
    _extend(c.JupyterHub, "load_roles", [{
        "name": "idle-culler",
        "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
        "services": ["idle-culler"],
    }])

    if sp.firewall:
        firewall.from_settings(s).apply()
    else:
        print("enclave: WARNING [spawner] firewall = false: notebook containers can reach every host "
              "service on their gateway address", file=sys.stderr)
