"""The container security invariants, as data: applied last, then re-checked, then checked again on
what Docker actually created.

DockerSpawner deep-merges `extra_host_config`/`extra_create_kwargs` over everything it computes, so a
config line can silently re-add a capability or a host mount. Here the invariants are written over the
merged result (`harden`), the result is verified (`violations`), and the created container's
`docker inspect` is verified too (`inspect_violations`) before it is started. Pure functions: no Docker.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from enclave import paths

from hub.spawn import seccomp

DATA_MOUNT = "/data"
WORK_MOUNT = "/home/jovyan/work"
UID, GID = paths.WORKSPACE_OWNER  # jovyan:users, as in the Jupyter docker stacks
USER = f"{UID}:{GID}"

# host_config keys that would open a door to the host; removed whatever the configuration says.
FORBIDDEN_HOST_KEYS = (
    "privileged", "cap_add", "devices", "device_requests", "device_cgroup_rules", "pid_mode", "uts_mode",
    "userns_mode", "cgroupns", "volumes_from", "links", "port_bindings", "publish_all_ports", "mounts",
    "volume_driver", "cpu_quota", "cpu_period", "cpuset_cpus", "extra_hosts", "runtime", "group_add",
    "oom_kill_disable", "storage_opt", "restart_policy",
)


@dataclass(frozen=True)
class Policy:
    """Everything that must hold for one notebook container."""

    data_dir: str
    workspace: str
    network: str
    mem_limit: int
    nano_cpus: int
    pids_limit: int
    tmpfs: dict[str, str] = field(default_factory=dict)
    user: str = USER
    ipv6_kernel: bool = True  # the sysctl exists only on kernels with IPv6
    seccomp_opt: str = field(default_factory=seccomp.security_opt)  # Docker's default minus ptrace (hub.spawn.seccomp)

    @property
    def security_opt(self) -> list[str]:
        return ["no-new-privileges", self.seccomp_opt]

    @property
    def binds(self) -> dict[str, dict[str, str]]:
        return {
            self.data_dir: {"bind": DATA_MOUNT, "mode": "ro"},
            self.workspace: {"bind": WORK_MOUNT, "mode": "rw"},
        }

    def host_config(self) -> dict:
        return dict(
            binds=self.binds,
            tmpfs=dict(self.tmpfs),
            read_only=True,
            cap_drop=["ALL"],
            security_opt=self.security_opt,
            pids_limit=self.pids_limit,
            mem_limit=self.mem_limit,
            memswap_limit=self.mem_limit,  # no swap on top of the memory limit
            nano_cpus=self.nano_cpus,
            network_mode=self.network,
            ipc_mode="private",
            auto_remove=True,
            sysctls={"net.ipv6.conf.all.disable_ipv6": "1"} if self.ipv6_kernel else {},
        )


def tmpfs_options(path: str, size: str) -> str:
    mode = "1777" if path == "/tmp" else "0700"
    return f"rw,nosuid,nodev,size={size},uid={UID},gid={GID},mode={mode}"


def harden(create_kwargs: dict, host_config: dict, policy: Policy) -> None:
    """Write the invariants over the (already merged) create kwargs and host config, in place."""
    for key in FORBIDDEN_HOST_KEYS:
        host_config.pop(key, None)
    host_config.update(policy.host_config())
    create_kwargs["user"] = policy.user
    create_kwargs.pop("volumes", None)  # anonymous volumes: nothing but our two binds
    create_kwargs.pop("host_config", None)
    create_kwargs.pop("networking_config", None)


def violations(create_kwargs: dict, host_config: dict, policy: Policy) -> list[str]:
    """What in the final request breaks an invariant (empty list: nothing)."""
    found = []
    for key, value in policy.host_config().items():
        if host_config.get(key) != value:
            found.append(f"host_config[{key!r}] is {host_config.get(key)!r}, must be {value!r}")
    for key in FORBIDDEN_HOST_KEYS:
        if host_config.get(key):
            found.append(f"host_config[{key!r}] is set")
    if create_kwargs.get("user") != policy.user:
        found.append(f"user is {create_kwargs.get('user')!r}, must be {policy.user!r}")
    if create_kwargs.get("volumes"):
        found.append("extra volumes requested")
    return found


def inspect_violations(info: dict, policy: Policy, *, on_swarm_node: bool = False) -> list[str]:
    """Check what Docker created (`docker inspect`), independently of what we asked for.

    `on_swarm_node`: the container of a Swarm service (hub.swarm.service). There no-new-privileges and
    the seccomp profile come from the node's daemon (verified by hub.swarm.nodes, not visible here),
    tmpfs folders are mounts, the network is the service's and the task is removed by Swarm."""
    hc, cfg = info.get("HostConfig") or {}, info.get("Config") or {}
    found = []

    def want(label, actual, expected):
        if actual != expected:
            found.append(f"{label} is {actual!r}, must be {expected!r}")

    want("Config.User", cfg.get("User"), policy.user)
    want("HostConfig.ReadonlyRootfs", hc.get("ReadonlyRootfs"), True)
    want("HostConfig.Privileged", hc.get("Privileged"), False)
    want("HostConfig.CapDrop", [c.upper().removeprefix("CAP_") for c in hc.get("CapDrop") or []], ["ALL"])
    want("HostConfig.CapAdd", hc.get("CapAdd") or [], [])
    if not on_swarm_node:
        if hc.get("SecurityOpt") != policy.security_opt:  # (the profile is long: name the part that differs)
            given = [o if not o.startswith("seccomp=") or o == policy.seccomp_opt else "seccomp=<another profile>"
                     for o in hc.get("SecurityOpt") or []]
            found.append(f"HostConfig.SecurityOpt is {given!r}, must be no-new-privileges and the enclave's "
                         "seccomp profile")
        want("HostConfig.NetworkMode", hc.get("NetworkMode"), policy.network)
        want("HostConfig.AutoRemove", hc.get("AutoRemove"), True)
        want("HostConfig.Tmpfs", hc.get("Tmpfs") or {}, dict(policy.tmpfs))
    want("HostConfig.PidsLimit", hc.get("PidsLimit"), policy.pids_limit)
    want("HostConfig.Memory", hc.get("Memory"), policy.mem_limit)
    want("HostConfig.NanoCpus", hc.get("NanoCpus"), policy.nano_cpus)
    want("HostConfig.Devices", hc.get("Devices") or [], [])
    for ns in ("PidMode", "UTSMode", "UsernsMode", "Cgroup"):
        want(f"HostConfig.{ns}", hc.get(ns) or "", "")
    want("HostConfig.IpcMode", hc.get("IpcMode"), "private")
    mounts = sorted(
        (m.get("Type"), m.get("Source"), m.get("Destination"), bool(m.get("RW"))) for m in info.get("Mounts") or []
        if not (on_swarm_node and m.get("Type") == "tmpfs" and m.get("Destination") in policy.tmpfs)
    )
    expected = sorted([
        ("bind", policy.data_dir, DATA_MOUNT, False),
        ("bind", policy.workspace, WORK_MOUNT, True),
    ])
    want("Mounts", mounts, expected)
    return found
