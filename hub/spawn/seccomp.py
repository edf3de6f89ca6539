"""The notebook containers' seccomp profile: Docker's default, without `ptrace`.

Kernel and notebook server run as one uid, the hosts have no Yama, and Docker's default profile allows
`ptrace` on kernels >= 4.8: a notebook cell could attach to the server and patch out every rule it
enforces. This profile is Docker's own default (Debian's docker.io 20.10, `profiles/seccomp/default.json`
from the golang-github-docker-docker-dev package) with the syscalls in DENIED taken out of every allow
rule and refused with EPERM. (`process_vm_readv/writev`, `pidfd_getfd` and `kcmp` are allowed there
only with CAP_SYS_PTRACE, which notebook containers never have; they are listed anyway.) Reading or
writing the server's /proc/<pid>/mem is not a syscall of its own: the server makes itself
non-dumpable at start (images/notebook/jupyter_server_config.py), which the kernel cannot undo.

`hub/spawn/seccomp.json` is the derived profile, kept in the repository so a host needs nothing more;
regenerate it after a Docker upgrade with `python -m hub.spawn.seccomp <docker default.json>`.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

DENIED = ("ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd", "kcmp")
PROFILE_FILE = Path(__file__).resolve().parent / "seccomp.json"
EPERM = 1


def derive(default: dict) -> dict:
    """Docker's default profile with DENIED removed from every allow rule and refused explicitly."""
    rules = []
    for rule in default["syscalls"]:
        if rule.get("action") == "SCMP_ACT_ALLOW":
            names = [n for n in rule["names"] if n not in DENIED]
            if not names:
                continue
            rule = {**rule, "names": names}
        elif set(rule["names"]) <= set(DENIED) and rule.get("action") == "SCMP_ACT_ERRNO":
            continue  # our own refusal from an earlier derive: written once, below
        rules.append(rule)
    rules.append({"names": list(DENIED), "action": "SCMP_ACT_ERRNO", "errnoRet": EPERM})
    return {**default, "syscalls": rules}


@functools.cache
def profile() -> str:
    """The profile as Docker's API takes it (`security_opt=["seccomp=<json>"]`): compact JSON."""
    return json.dumps(json.loads(PROFILE_FILE.read_text()), separators=(",", ":"), sort_keys=True)


def security_opt() -> str:
    return f"seccomp={profile()}"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m hub.spawn.seccomp <docker's profiles/seccomp/default.json>", file=sys.stderr)
        return 2
    derived = derive(json.loads(Path(argv[0]).read_text()))
    PROFILE_FILE.write_text(json.dumps(derived, indent=1) + "\n")
    print(f"wrote {PROFILE_FILE} ({len(derived['syscalls'])} rules; denied: {', '.join(DENIED)})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
