"""The policy's knobs, read from the environment the spawner gives the container.

ENCLAVE_MAX_READ_BYTES   largest single file the contents API returns (default 5 MiB)
ENCLAVE_MAX_WRITE_BYTES  largest single file the contents API writes or uploads (default 1 MiB)
ENCLAVE_RELEASE_URL      the release request page named in refusals (default: the hub's
                         base URL + services/egress/)

A value that is not a positive integer stops the server at start-up (better than silently running
with no limit).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

MIB = 1024 * 1024
DEFAULT_MAX_READ_BYTES = 5 * MIB
DEFAULT_MAX_WRITE_BYTES = 1 * MIB


def _positive_int(env: dict, name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a whole number of bytes") from None
    if value <= 0:
        raise ValueError(f"{name}={raw!r} must be a positive number of bytes")
    return value


def release_url(env: dict | None = None) -> str:
    """Where a researcher asks for outputs to be released."""
    env = os.environ if env is None else env
    if env.get("ENCLAVE_RELEASE_URL"):
        return env["ENCLAVE_RELEASE_URL"]
    base = env.get("JUPYTERHUB_BASE_URL") or "/"
    return base.rstrip("/") + "/services/egress/"


@dataclass(frozen=True)
class PolicyLimits:
    max_read_bytes: int = DEFAULT_MAX_READ_BYTES
    max_write_bytes: int = DEFAULT_MAX_WRITE_BYTES

    @classmethod
    def from_env(cls, env: dict | None = None) -> "PolicyLimits":
        env = os.environ if env is None else env
        return cls(
            max_read_bytes=_positive_int(env, "ENCLAVE_MAX_READ_BYTES", DEFAULT_MAX_READ_BYTES),
            max_write_bytes=_positive_int(env, "ENCLAVE_MAX_WRITE_BYTES", DEFAULT_MAX_WRITE_BYTES),
        )


def human(n: int) -> str:
    """1048576 -> '1 MiB' (for messages a researcher reads)."""
    for unit, size in (("GiB", 1024**3), ("MiB", MIB), ("KiB", 1024)):
        if n >= size:
            value = n / size
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{n} bytes"
