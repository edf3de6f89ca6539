"""The host guard's kernel part: an nftables table that meters, paces and caps what each notebook
container sends to the host (and so toward people), whatever the channel.

Everything a notebook server sends toward a browser (HTTP answers, kernel and terminal websockets)
crosses from its project bridge into the host, where the proxy path runs. One table (`inet <table>`)
with a chain on the host's input hook, before the host firewall, holds per container (by its address
on the project network, mapped to named objects `<kind>_<key>`):

- ``pace_<key>``: a token bucket (nftables `limit ... burst`) on the server's answers (TCP from port
  8888): `burst` bytes at full speed (plus one second of the rate: nftables' bucket), then `rate`;
  packets over it are dropped, so TCP slows down. (nftables rather than tc: TBF's bucket cannot hold
  more than ~270 s of its rate, and tc police is not in this kernel.)
- ``cap_<key>``: a quota of what the server may still send today; past it everything from the
  container to the host is dropped until the guard stops the server.
- ``vol_<key>`` and ``slow_<key>``: counters of bytes let through and bytes held back by the pace.

Fail closed: answers from a project bridge's server port whose address is not under guard are
dropped, and nothing comes from a project bridge over IPv6. The container cannot change any of
this: it is the host's netfilter, and the container has no capability at all. The one seam is
`runner` (runs an argv with optional stdin, returns CompletedProcess).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field

Runner = Callable[..., subprocess.CompletedProcess]
SERVER_PORT = 8888  # jupyterhub-singleuser in the notebook image


def _run(argv: list[str], input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(argv, input=input, capture_output=True, text=True, timeout=60)


class GuardError(RuntimeError):
    """nftables refused a change; the message says which and why."""


@dataclass(frozen=True)
class Reading:
    sent: int  # bytes let through to the host since the server was put under guard
    held_back: int  # bytes dropped by the pace (the burst was spent)
    cap: int  # bytes the quota allows
    cap_used: int  # bytes the quota has counted

    @property
    def cap_reached(self) -> bool:
        return self.cap_used >= self.cap


@dataclass
class Meter:
    table: str
    bridge_prefix: str
    runner: Runner = field(default=_run, repr=False)

    def _nft(self, script: str) -> None:
        done = self.runner(["nft", "-f", "-"], input=script)
        if done.returncode != 0:
            raise GuardError(f"nft refused the guard's change: {done.stderr.strip()[:500]}")

    def _t(self) -> str:
        return f"inet {self.table}"

    def install(self) -> None:
        """Create the table, its maps and chain if missing, and (re)write the chain's rules; running
        servers keep their meters (a hub restart must not unguard or reset them)."""
        t, bridges = self._t(), f'"{self.bridge_prefix}*"'
        self._nft(f"""
add table {t}
add set {t} guarded {{ type ipv4_addr; }}
add map {t} pace {{ type ipv4_addr : limit; }}
add map {t} cap {{ type ipv4_addr : quota; }}
add map {t} vol {{ type ipv4_addr : counter; }}
add map {t} slow {{ type ipv4_addr : counter; }}
add chain {t} input {{ type filter hook input priority -5; policy accept; }}
flush chain {t} input
add rule {t} input iifname {bridges} meta nfproto ipv6 drop
add rule {t} input iifname {bridges} tcp sport {SERVER_PORT} ip saddr != @guarded drop
add rule {t} input iifname {bridges} tcp sport {SERVER_PORT} limit name ip saddr map @pace counter name ip saddr map @slow drop
add rule {t} input iifname {bridges} quota name ip saddr map @cap drop
add rule {t} input iifname {bridges} counter name ip saddr map @vol
""")

    def remove(self) -> None:
        """Delete the whole table (tests, uninstall)."""
        self.runner(["nft", "delete", "table", "inet", self.table])

    def guard(self, key: str, ip: str, *, burst: int, rate: int, cap: int) -> None:
        """Put the container at `ip` under guard: `burst` bytes, then `rate` bytes/s; `cap` bytes in all."""
        t = self._t()
        self._forget(key, ip, strict=False)
        self._nft(f"""
add limit {t} pace_{key} {{ rate over {int(rate)} bytes/second burst {int(burst)} bytes }}
add quota {t} cap_{key} {{ over {max(0, int(cap))} bytes }}
add counter {t} vol_{key}
add counter {t} slow_{key}
add element {t} pace {{ {ip} : "pace_{key}" }}
add element {t} cap {{ {ip} : "cap_{key}" }}
add element {t} vol {{ {ip} : "vol_{key}" }}
add element {t} slow {{ {ip} : "slow_{key}" }}
add element {t} guarded {{ {ip} }}
""")

    def set_cap(self, key: str, ip: str, cap: int, used: int) -> None:
        """Give the server a new quota (a steward's raise, a new day), keeping what it has used."""
        t = self._t()
        self._nft(f"""
delete element {t} cap {{ {ip} }}
delete quota {t} cap_{key}
add quota {t} cap_{key} {{ over {max(0, int(cap))} bytes used {max(0, int(used))} bytes }}
add element {t} cap {{ {ip} : "cap_{key}" }}
""")

    def release(self, key: str, ip: str) -> Reading | None:
        """Take the server out of guard (its container is gone); returns its last reading."""
        last = self.read().get(key)
        self._forget(key, ip, strict=True)
        return last

    def _forget(self, key: str, ip: str, strict: bool) -> None:
        t = self._t()
        lines = [f"delete element {t} {m} {{ {ip} }}" for m in ("guarded", "pace", "cap", "vol", "slow")]
        lines += [f"delete {kind} {t} {name}_{key}" for kind, name in
                  (("limit", "pace"), ("quota", "cap"), ("counter", "vol"), ("counter", "slow"))]
        for line in lines:  # one at a time: some may already be gone
            done = self.runner(["nft", line])
            if strict and done.returncode != 0 and "No such file" not in done.stderr:
                raise GuardError(f"nft refused '{line}': {done.stderr.strip()[:300]}")

    def read(self) -> dict[str, Reading]:
        """The current reading of every guarded server, by key."""
        out: dict[str, dict] = {}
        for what in ("counters", "quotas"):
            done = self.runner(["nft", "-j", "list", what, "table", "inet", self.table])
            if done.returncode != 0:
                raise GuardError(f"nft could not list the guard's {what}: {done.stderr.strip()[:300]}")
            for item in json.loads(done.stdout or '{"nftables": []}')["nftables"]:
                obj = item.get("counter") or item.get("quota")
                if not obj:
                    continue
                kind, _, key = obj["name"].partition("_")
                slot = out.setdefault(key, {})
                if kind == "vol":
                    slot["sent"] = obj["bytes"]
                elif kind == "slow":
                    slot["held_back"] = obj["bytes"]
                elif kind == "cap":
                    slot["cap"], slot["cap_used"] = obj["bytes"], obj.get("used", 0)
        return {k: Reading(v.get("sent", 0), v.get("held_back", 0), v.get("cap", 0), v.get("cap_used", 0))
                for k, v in out.items() if "sent" in v}
