"""Host firewall (iptables) that keeps notebook containers off everything but the hub API.

Docker's internal networks only stop forwarding *out of* the bridge: a container still reaches every
port the host listens on at its gateway address. The enclave therefore owns two chains per address
family, matched on the project bridges' name prefix (`<bridge_prefix>+`):

- ``<chain>-INPUT`` (jumped to from INPUT): from a project bridge, only replies and new TCP connections
  to the allowed destinations (`ports`: the hub API, and the package index when it runs) on *that
  bridge's own* address (the project gateway: `addrtype --limit-iface-in`) are accepted; the same ports
  on any other host address (docker0, another project's gateway, the host's LAN address) and everything
  else is rejected. These ports are also rejected from every other interface but loopback (the hub and
  the index listen on 0.0.0.0 so containers on any project network can reach them). The package index
  tells projects apart by the gateway a connection arrived at, which this rule makes unforgeable.
- ``<chain>-FWD`` (jumped to from DOCKER-USER, else FORWARD): nothing is forwarded to or from a project
  bridge, so no other project's container, no other Docker network and no route out.

Rejections use "administratively prohibited", so a blocked connection is told apart from a port nobody
listens on. Chains are replaced atomically (`iptables-restore --noflush`); `remove()` deletes the jumps
and the chains and leaves the host as before. The one seam is `runner` (runs an argv, returns
CompletedProcess), which unit tests replace.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

Runner = Callable[..., subprocess.CompletedProcess]


def ipv6_kernel() -> bool:
    """Whether this kernel has IPv6 (no ip6tables rules, no IPv6 sysctl in containers without it)."""
    return Path("/proc/net/if_inet6").exists()


def _run(argv: list[str], input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(argv, input=input, capture_output=True, text=True, timeout=60)


class FirewallError(RuntimeError):
    """iptables refused a change; the message says which and why."""


@dataclass
class Firewall:
    bridge_prefix: str
    api_port: int
    index_port: int | None = None  # the package index (hub.packages), when it runs
    chain: str = "ENCLAVE"
    runner: Runner = field(default=_run, repr=False)
    ipv6: bool = field(default_factory=ipv6_kernel)  # a kernel without IPv6 needs no ip6tables rules

    @property
    def families(self) -> tuple[int, ...]:
        return (4, 6) if self.ipv6 else (4,)

    @property
    def ports(self) -> tuple[int, ...]:
        """The one list of host destinations a notebook container may open a connection to."""
        return (self.api_port,) + ((self.index_port,) if self.index_port else ())

    @property
    def input_chain(self) -> str:
        return f"{self.chain}-INPUT"

    @property
    def forward_chain(self) -> str:
        return f"{self.chain}-FWD"

    # -- rules ---------------------------------------------------------------------------------
    def input_rules(self, family: int) -> list[str]:
        br = f"{self.bridge_prefix}+"
        reject = "icmp-admin-prohibited" if family == 4 else "icmp6-adm-prohibited"
        rules = [f"-i {br} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"]
        if family == 4:  # project networks are IPv4 only; nothing over IPv6 is allowed
            rules += [f"-i {br} -p tcp -m tcp --dport {port} -m addrtype --dst-type LOCAL --limit-iface-in -j ACCEPT"
                      for port in self.ports]
        rules.append(f"-i {br} -j REJECT --reject-with {reject}")
        rules += [f"! -i lo -p tcp -m tcp --dport {port} -j REJECT --reject-with tcp-reset" for port in self.ports]
        return rules

    def forward_rules(self, family: int) -> list[str]:
        br = f"{self.bridge_prefix}+"
        reject = "icmp-admin-prohibited" if family == 4 else "icmp6-adm-prohibited"
        return [f"-i {br} -j REJECT --reject-with {reject}", f"-o {br} -j REJECT --reject-with {reject}"]

    def restore_script(self, family: int) -> str:
        lines = ["*filter", f":{self.input_chain} - [0:0]", f":{self.forward_chain} - [0:0]"]
        lines += [f"-A {self.input_chain} {r}" for r in self.input_rules(family)]
        lines += [f"-A {self.forward_chain} {r}" for r in self.forward_rules(family)]
        lines.append("COMMIT")
        return "\n".join(lines) + "\n"

    # -- side effects --------------------------------------------------------------------------
    @staticmethod
    def _tool(family: int) -> str:
        return "iptables" if family == 4 else "ip6tables"

    def _ipt(self, family: int, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        argv = [self._tool(family), "-w", "10", *args]
        result = self.runner(argv)
        if check and result.returncode != 0:
            raise FirewallError(f"`{' '.join(argv)}` failed: {(result.stderr or '').strip()}")
        return result

    def _forward_parent(self, family: int) -> str:
        # Docker jumps to DOCKER-USER first in FORWARD and never flushes it: rules there survive
        # Docker restarts and come before Docker's own ACCEPTs.
        has_docker_user = self._ipt(family, "-S", "DOCKER-USER", check=False).returncode == 0
        return "DOCKER-USER" if has_docker_user else "FORWARD"

    def _ensure_jump(self, family: int, parent: str, chain: str) -> None:
        if self._ipt(family, "-C", parent, "-j", chain, check=False).returncode != 0:
            self._ipt(family, "-I", parent, "1", "-j", chain)

    def apply(self) -> None:
        """Install or refresh the rules (idempotent)."""
        for family in self.families:
            argv = [f"{self._tool(family)}-restore", "-w", "10", "--noflush"]
            result = self.runner(argv, input=self.restore_script(family))
            if result.returncode != 0:
                raise FirewallError(
                    f"could not load the enclave firewall rules ({argv[0]}): {(result.stderr or '').strip()}. "
                    "The hub must run as root on a host with iptables."
                )
            self._ensure_jump(family, "INPUT", self.input_chain)
            self._ensure_jump(family, self._forward_parent(family), self.forward_chain)

    def remove(self) -> None:
        """Delete the jumps and chains; missing pieces are fine (idempotent)."""
        for family in self.families:
            for parent, chain in (
                ("INPUT", self.input_chain),
                ("DOCKER-USER", self.forward_chain),
                ("FORWARD", self.forward_chain),
            ):
                while self._ipt(family, "-D", parent, "-j", chain, check=False).returncode == 0:
                    pass
            for chain in (self.input_chain, self.forward_chain):
                if self._ipt(family, "-S", chain, check=False).returncode == 0:
                    self._ipt(family, "-F", chain)
                    self._ipt(family, "-X", chain)

    def status(self) -> dict[str, list[str]]:
        """Rules currently installed per chain and family (empty list: chain absent)."""
        out: dict[str, list[str]] = {}
        for family in self.families:
            for chain in (self.input_chain, self.forward_chain):
                r = self._ipt(family, "-S", chain, check=False)
                out[f"{self._tool(family)} {chain}"] = r.stdout.splitlines() if r.returncode == 0 else []
            jumps = self._ipt(family, "-S", check=False).stdout.splitlines()
            out[f"{self._tool(family)} jumps"] = [
                j for j in jumps if j.endswith(f"-j {self.input_chain}") or j.endswith(f"-j {self.forward_chain}")
            ]
        return out

    def is_applied(self) -> bool:
        st = self.status()
        tools = [self._tool(f) for f in self.families]
        return all(st[f"{t} {c}"] for t in tools for c in (self.input_chain, self.forward_chain)) and all(
            len(st[f"{t} jumps"]) >= 2 for t in tools
        )


def from_settings(settings, runner: Runner | None = None) -> Firewall:
    sp = settings.spawner
    fw = Firewall(bridge_prefix=sp.bridge_prefix, api_port=settings.hub.api_port, chain=sp.firewall_chain,
                  index_port=settings.packages.index_port if settings.packages.enabled else None)
    if runner is not None:
        fw.runner = runner
    return fw
