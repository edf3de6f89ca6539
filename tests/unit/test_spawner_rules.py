"""The spawner's pure parts: hardening invariants, network names, firewall rules, admission, settings.

The integration tests (tests/integration/test_spawn*.py, test_isolation.py) show the same properties on
real containers; these show that configuration cannot weaken them and that bad values are refused.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from enclave import network, units
from enclave.errors import PermissionDenied
from enclave.settings import Settings, SettingsError

from hub.spawn import admission, firewall, hardening, seccomp


def _policy(**kw):
    base = dict(data_dir="/srv/data/cohort", workspace="/state/workspaces/cohort/ann", network="enclave-cohort",
                mem_limit=4 * 1024**3, nano_cpus=1_000_000_000, pids_limit=512,
                tmpfs={"/tmp": hardening.tmpfs_options("/tmp", "256m")})
    base.update(kw)
    return hardening.Policy(**base)


HOSTILE_EXTRA = {
    "privileged": True, "cap_add": ["SYS_ADMIN"], "cap_drop": [], "security_opt": ["seccomp=unconfined"],
    "read_only": False, "binds": {"/": {"bind": "/host", "mode": "rw"}, "/srv/data/cohort": {"bind": "/data", "mode": "rw"}},
    "mounts": [{"Source": "/var/run/docker.sock", "Target": "/run/docker.sock"}], "network_mode": "host",
    "pid_mode": "host", "ipc_mode": "host", "userns_mode": "host", "devices": ["/dev/sda:/dev/sda"],
    "pids_limit": -1, "mem_limit": "1T", "port_bindings": {8888: 80}, "auto_remove": False,
}


def test_invariants_win_over_hostile_extra_host_config():
    create = {"image": "enclave-notebook:latest", "user": "root", "volumes": ["/anon"]}
    host = dict(HOSTILE_EXTRA)
    policy = _policy()
    assert hardening.violations(create, host, policy)  # the merged request is unsafe...
    hardening.harden(create, host, policy)
    assert hardening.violations(create, host, policy) == []  # ...and is safe after harden()
    assert host["binds"] == {
        "/srv/data/cohort": {"bind": "/data", "mode": "ro"},
        "/state/workspaces/cohort/ann": {"bind": "/home/jovyan/work", "mode": "rw"},
    }
    assert host["cap_drop"] == ["ALL"] and host["security_opt"] == ["no-new-privileges", seccomp.security_opt()]
    assert host["read_only"] is True and host["network_mode"] == "enclave-cohort"
    assert create["user"] == "1000:100" and "volumes" not in create
    for key in ("privileged", "cap_add", "mounts", "pid_mode", "userns_mode", "devices", "port_bindings"):
        assert key not in host
    assert host["ipc_mode"] == "private" and host["pids_limit"] == 512 and host["auto_remove"] is True


def _inspect(policy, **changes):
    info = {
        "Config": {"User": "1000:100"},
        "HostConfig": {
            "ReadonlyRootfs": True, "Privileged": False, "CapDrop": ["ALL"], "CapAdd": None,
            "SecurityOpt": ["no-new-privileges", seccomp.security_opt()], "NetworkMode": policy.network, "PidsLimit": policy.pids_limit,
            "Memory": policy.mem_limit, "NanoCpus": policy.nano_cpus, "Devices": [], "AutoRemove": True,
            "PidMode": "", "UTSMode": "", "UsernsMode": "", "Cgroup": "", "IpcMode": "private",
            "Tmpfs": dict(policy.tmpfs),
        },
        "Mounts": [
            {"Type": "bind", "Source": policy.data_dir, "Destination": "/data", "RW": False},
            {"Type": "bind", "Source": policy.workspace, "Destination": "/home/jovyan/work", "RW": True},
        ],
    }
    for path, value in changes.items():
        section, key = path.split(".")
        info[section][key] = value
    return info


def test_inspect_check_accepts_a_correct_container():
    policy = _policy()
    assert hardening.inspect_violations(_inspect(policy), policy) == []


@pytest.mark.parametrize("path, value", [
    ("HostConfig.ReadonlyRootfs", False),
    ("HostConfig.CapDrop", []),
    ("HostConfig.CapAdd", ["NET_ADMIN"]),
    ("HostConfig.Privileged", True),
    ("HostConfig.NetworkMode", "bridge"),
    ("HostConfig.PidMode", "host"),
    ("HostConfig.SecurityOpt", []),
    ("HostConfig.SecurityOpt", ["no-new-privileges"]),  # Docker's default profile: ptrace allowed
    ("HostConfig.SecurityOpt", ["no-new-privileges", "seccomp=unconfined"]),
    ("Config.User", "0"),
])
def test_inspect_check_catches_what_docker_did_not_apply(path, value):
    policy = _policy()
    assert hardening.inspect_violations(_inspect(policy, **{path: value}), policy)


def test_inspect_check_refuses_any_extra_mount():
    policy = _policy()
    info = _inspect(policy)
    info["Mounts"].append({"Type": "volume", "Source": "/var/lib/docker/volumes/x", "Destination": "/opt", "RW": True})
    assert any("Mounts" in v for v in hardening.inspect_violations(info, policy))


@pytest.mark.parametrize("slug", ["a", "cohort", "very-long-project-name-abcdefgh", "a-"])
@pytest.mark.parametrize("prefix", ["enc-", "e1a2b3c-", "x"])
def test_bridge_names_fit_linux_and_carry_the_prefix(slug, prefix):
    name = network.bridge_name(prefix, slug)
    assert len(name) <= 15 and name.startswith(prefix)
    assert network.bridge_name(prefix, slug) == name


def test_bridge_names_differ_for_slugs_sharing_a_start():
    assert network.bridge_name("enc-", "diabetes-2019") != network.bridge_name("enc-", "diabetes-2020")


def test_network_options_are_internal_without_inter_container_traffic():
    opts = network.create_options("cohort", "enc-")
    assert opts["internal"] is True
    assert opts["options"]["com.docker.network.bridge.enable_icc"] == "false"


def test_existing_network_without_isolation_is_refused():
    info = {"Name": "enclave-cohort", "Internal": False, "Options": {}}
    with pytest.raises(RuntimeError, match="not internal"):
        network.check_network(info, "cohort", "enc-")


class Recorder:
    def __init__(self, fail=()):
        self.calls, self.fail = [], fail

    def __call__(self, argv, input=None):
        self.calls.append((argv, input))
        rc = 1 if any(f in " ".join(argv) for f in self.fail) else 0
        return subprocess.CompletedProcess(argv, rc, "", "")


def test_firewall_rules_allow_only_the_hub_api_and_the_package_index_from_project_bridges():
    fw = firewall.Firewall(bridge_prefix="enc-", api_port=8081, chain="ENCLAVE", runner=Recorder(), index_port=8093)
    v4 = fw.restore_script(4)
    for port in (8081, 8093):
        assert f"-A ENCLAVE-INPUT -i enc-+ -p tcp -m tcp --dport {port} -m addrtype --dst-type LOCAL --limit-iface-in -j ACCEPT" in v4
        assert f"-A ENCLAVE-INPUT ! -i lo -p tcp -m tcp --dport {port} -j REJECT --reject-with tcp-reset" in v4
    assert v4.count("-j ACCEPT") == 3  # replies, and those two ports: nothing else
    assert "-A ENCLAVE-INPUT -i enc-+ -j REJECT --reject-with icmp-admin-prohibited" in v4
    assert "-A ENCLAVE-FWD -i enc-+ -j REJECT" in v4 and "-A ENCLAVE-FWD -o enc-+ -j REJECT" in v4
    assert v4.index("--dport 8081") < v4.index("-i enc-+ -j REJECT")  # accept before the catch-all
    v6 = fw.restore_script(6)
    assert "--dport 8081 -m addrtype" not in v6  # nothing over IPv6


def test_firewall_apply_jumps_from_input_and_docker_user():
    rec = Recorder(fail=("-C",))  # no jump yet
    firewall.Firewall(bridge_prefix="enc-", api_port=8081, runner=rec, ipv6=True).apply()
    argvs = [" ".join(a) for a, _ in rec.calls]
    assert "iptables -w 10 -I INPUT 1 -j ENCLAVE-INPUT" in argvs
    assert "iptables -w 10 -I DOCKER-USER 1 -j ENCLAVE-FWD" in argvs
    assert "ip6tables -w 10 -I INPUT 1 -j ENCLAVE-INPUT" in argvs


def test_firewall_apply_failure_says_what_to_do():
    with pytest.raises(firewall.FirewallError, match="must run as root"):
        firewall.Firewall(bridge_prefix="enc-", api_port=8081, runner=Recorder(fail=("restore",))).apply()


@pytest.mark.parametrize("text, expected", [
    ("2 GiB", 2 * 1024**3), ("512M", 512 * 1024**2), ("4g", 4 * 1024**3), ("1.5GB", 1_500_000_000),
    ("100", 100), (1024, 1024), ("0 B", 0),
])
def test_parse_bytes(text, expected):
    assert units.parse_bytes(text) == expected


@pytest.mark.parametrize("text", ["", "lots", "4 potatoes", "-1G"])
def test_parse_bytes_refuses_nonsense(text):
    with pytest.raises(ValueError, match="not a memory size"):
        units.parse_bytes(text)


class FixedMemory:
    def __init__(self, available):
        self.value = available

    def available(self):
        return self.value


def test_admission_counts_the_new_container():
    admission.check_admission("1G", "2G", FixedMemory(3 * 1024**3))  # exactly at the reserve: allowed
    with pytest.raises(PermissionDenied) as exc:
        admission.check_admission("1G", "2G", FixedMemory(3 * 1024**3 - 1))
    assert exc.value.reason == "memory_reserve" and "too busy" in str(exc.value)


def test_admission_with_real_psutil_and_a_reserve_larger_than_the_machine():
    with pytest.raises(PermissionDenied, match="64.0 TiB must stay free"):
        admission.check_admission("1M", "64 TiB")
    admission.check_admission("1M", "0")


@pytest.mark.parametrize("spawner, words", [
    ({"image": "someone/else:latest", "allowed_images": ["enclave-notebook:latest"]}, "not in allowed_images"),
    ({"mem_limit": "four gigs"}, "mem_limit"),
    ({"memory_reserve": "a lot"}, "memory_reserve"),
    ({"idle_timeout": 60}, "at least 300"),
    ({"bridge_prefix": "toolongprefix"}, "bridge_prefix"),
    ({"pids_limit": 5}, "pids_limit"),
    ({"cpu_limit": 0.0}, "cpu_limit"),
    ({"firewall_chain": "BAD CHAIN"}, "firewall_chain"),
])
def test_bad_spawner_settings_stop_start_up(spawner, words):
    with pytest.raises(SettingsError, match=words):
        Settings({"spawner": spawner})


def test_default_spawner_settings():
    sp = Settings({}).spawner
    assert sp.image in sp.allowed_images and sp.idle_timeout == 3600 and sp.firewall is True


def test_configure_sets_spawner_culler_and_hub_api_address(tmp_path):
    from traitlets.config import Config

    from hub.spawn.spawner import configure

    s = Settings({"state_dir": str(tmp_path), "spawner": {"firewall": False, "idle_timeout": 1200}})
    c = Config()
    c.JupyterHub.services = [{"name": "egress", "url": "http://127.0.0.1:9"}]
    configure(c, s)
    assert c.JupyterHub.spawner_class == "hub.spawn.spawner.ProjectSpawner"
    assert c.JupyterHub.hub_bind_url == f"http://0.0.0.0:{s.hub.api_port}"
    names = [svc["name"] for svc in c.JupyterHub.services]
    assert names == ["egress", "idle-culler"]
    culler = c.JupyterHub.services[1]["command"]
    assert "--timeout=1200" in culler
    role = next(r for r in c.JupyterHub.load_roles if r["name"] == "idle-culler")
    assert set(role["scopes"]) == {"list:users", "read:users:activity", "read:servers", "delete:servers"}
    assert c.ProjectSpawner.remove is True and c.ProjectSpawner.allowed_images == []


def test_seccomp_profile_is_dockers_default_without_ptrace():
    """The profile allows what Docker's default allows (its rules are kept) but never a DENIED syscall."""
    profile = json.loads(seccomp.profile())
    assert profile["defaultAction"] == "SCMP_ACT_ERRNO"
    allowed = {n for r in profile["syscalls"] if r["action"] == "SCMP_ACT_ALLOW" for n in r["names"]}
    assert not allowed & set(seccomp.DENIED)
    assert {"read", "write", "openat", "clone", "execve", "socket", "connect", "mmap", "futex"} <= allowed
    refused = [r for r in profile["syscalls"] if r["action"] == "SCMP_ACT_ERRNO" and set(r["names"]) & set(seccomp.DENIED)]
    assert refused == [{"names": list(seccomp.DENIED), "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
    assert seccomp.derive(profile) == profile  # re-deriving the committed profile changes nothing


def test_seccomp_derive_takes_ptrace_out_of_every_allow_rule():
    default = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["read", "ptrace"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}},
        {"names": ["kcmp", "process_vm_readv"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_PTRACE"]}},
    ]}
    out = seccomp.derive(default)
    assert out["syscalls"][0] == {"names": ["read"], "action": "SCMP_ACT_ALLOW"}
    assert len(out["syscalls"]) == 2 and out["syscalls"][1]["action"] == "SCMP_ACT_ERRNO"
