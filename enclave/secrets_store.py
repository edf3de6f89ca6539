"""Secrets kept in state_dir/secrets (mode 0700, files 0600), generated on this host, never logged.

- mfa.keys: Fernet keys, one per line, newest first; TOTP seeds are encrypted with the first and
  decrypted with any (MultiFernet), so `enclave mfa rotate-key` can rotate without downtime.
- jupyterhub_cookie_secret, proxy_auth_token: JupyterHub's own secrets.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, MultiFernet


def secrets_dir(state_dir: Path) -> Path:
    d = Path(state_dir) / "secrets"
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(d, 0o700)
    return d


def _write_private(path: Path, data: bytes) -> None:
    """Write atomically with 0600 from the start (never briefly world-readable)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def ensure_file(state_dir: Path, name: str, make: callable) -> bytes:
    path = secrets_dir(state_dir) / name
    if not path.exists():
        _write_private(path, make())
    return path.read_bytes()


def mfa_keyring(state_dir: Path) -> MultiFernet:
    raw = ensure_file(state_dir, "mfa.keys", lambda: Fernet.generate_key() + b"\n")
    keys = [Fernet(line.strip()) for line in raw.splitlines() if line.strip()]
    return MultiFernet(keys)


def rotate_mfa_key(state_dir: Path) -> int:
    """Put a new key first; returns how many keys are kept. Re-encryption is the caller's job."""
    path = secrets_dir(state_dir) / "mfa.keys"
    old = path.read_bytes() if path.exists() else b""
    _write_private(path, Fernet.generate_key() + b"\n" + old)
    return len([x for x in (old.splitlines()) if x.strip()]) + 1


def ensure_all(state_dir: Path) -> None:
    mfa_keyring(state_dir)
    ensure_file(state_dir, "jupyterhub_cookie_secret", lambda: secrets.token_hex(32).encode())
    ensure_file(state_dir, "proxy_auth_token", lambda: secrets.token_hex(32).encode())
