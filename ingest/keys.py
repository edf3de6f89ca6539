"""Per-project pseudonymisation keys: 32 random bytes per project, kept in state_dir only.

The key lives at ``enclave.paths.project_keys(state_dir)/<slug>.key`` (folder 0700, file 0600, owned by
the operator): never in a data folder, never in anything a container mounts. Without it nobody can
compute the pseudonym of a given identifier, so two projects cannot be linked on their pseudonyms and,
once a closed project's key is destroyed, not even the enclave can link new data to the old pseudonyms.

A first import gets a key in memory (:func:`load_or_new`) that is written (:func:`store`) only when
the import is about to be published, so a refused first import leaves no key behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy.orm import Session

from enclave import audit, paths, projects
from enclave.errors import Conflict, Invalid, NotFound
from enclave.models import ProjectStatus

KEY_BYTES = 32


def _folder(state_dir: Path) -> Path:
    d = paths.project_keys(Path(state_dir))
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(d.parent, 0o700)
    os.chmod(d, 0o700)
    return d


def key_path(state_dir: Path, slug: str) -> Path:
    if not projects.SLUG_RE.match(slug):
        raise Invalid(f"'{slug}' is not a project name")
    return paths.project_keys(Path(state_dir)) / f"{slug}.key"


def read(state_dir: Path, slug: str) -> bytes | None:
    """The project's key, or None when it has none yet (or it was destroyed)."""
    p = key_path(state_dir, slug)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        return None
    if len(data) != KEY_BYTES:
        raise Invalid(f"the pseudonym key of '{slug}' at {p} is damaged ({len(data)} bytes, expected {KEY_BYTES});"
                      " restore it from backup: new pseudonyms would not match the project's earlier ones")
    return data


def load_or_new(state_dir: Path, slug: str) -> tuple[bytes, bool]:
    """(key, is_new): the stored key, or fresh random bytes not yet written anywhere."""
    key = read(state_dir, slug)
    if key is not None:
        return key, False
    return secrets.token_bytes(KEY_BYTES), True


def store(state_dir: Path, slug: str, key: bytes) -> Path:
    """Write a new key with 0600 from the first byte; refuses to replace an existing one."""
    if len(key) != KEY_BYTES:
        raise ValueError("a project key is 32 bytes")
    p = _folder(state_dir) / f"{slug}.key"
    tmp = p.with_name(f".{p.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(key)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, p)  # fails if a key appeared meanwhile: never overwrite one
        except FileExistsError:
            raise Conflict(f"project '{slug}' got a pseudonym key from another import meanwhile; run the import again") from None
    finally:
        tmp.unlink(missing_ok=True)
    return p


def discard(state_dir: Path, slug: str) -> None:
    """Remove a key this process just stored for an import that then failed."""
    _shred(key_path(state_dir, slug))


def _shred(p: Path) -> None:
    try:
        size = p.stat().st_size
    except FileNotFoundError:
        return
    with open(p, "r+b") as fh:
        fh.write(secrets.token_bytes(size))
        fh.flush()
        os.fsync(fh.fileno())
    p.unlink()


@contextlib.contextmanager
def project_lock(state_dir: Path, slug: str) -> Iterator[None]:
    """One import (or key destruction) at a time per project, across processes."""
    lock = _folder(state_dir) / f".{slug}.lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def destroy(session: Session, actor: str, state_dir: Path, slug: str) -> None:
    """Destroy a closed project's key (overwritten, then unlinked), audited in the caller's transaction.

    Pseudonyms already in the data folder stay as they are; nobody can link them to identifiers again.
    """
    project = projects.get(session, slug)
    if project.status != ProjectStatus.closed:
        raise Invalid(f"project '{slug}' is {project.status.value}; close it first "
                      f"(`enclave project close {slug}`): its key is needed for further imports")
    p = key_path(state_dir, slug)
    with project_lock(state_dir, slug):
        if not p.exists():
            raise NotFound(f"project '{slug}' has no pseudonym key (never imported with --id-columns, or already destroyed)")
        audit.record(session, actor, "data.destroy_key", slug, {"key_file": str(p)})
        session.flush()
        _shred(p)
