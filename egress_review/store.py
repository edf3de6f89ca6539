"""The quarantine store: content-addressed, read-only copies of every file submitted for release.

A file is copied from an already-open descriptor into a temporary file in the store, hashed while it
is copied (so the name is the hash of exactly the bytes written), fsynced, made read-only (0444) and
renamed into place as `<sha256[:2]>/<sha256>`. Reading back for release hashes again while spooling to
a private temporary file, and refuses if the bytes no longer match their name: a tampered store gives
a refusal, never different bytes. Blobs are shared between requests (same bytes, same name).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO

from enclave import paths
from enclave.errors import Conflict, Invalid, NotFound

CHUNK = 1 << 20


class StoreTampered(Conflict):
    reason = "store_tampered"


def root(state_dir: Path) -> Path:
    r = paths.quarantine(state_dir)
    r.mkdir(parents=True, exist_ok=True, mode=0o700)
    return r


def blob_path(state_dir: Path, sha256: str) -> Path:
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise Invalid("not a sha256 name")
    return root(state_dir) / sha256[:2] / sha256


def put_fd(state_dir: Path, fd: int, max_bytes: int, name: str = "file") -> tuple[str, int]:
    """Copy everything readable from `fd` into the store; returns (sha256, size).

    The size limit is enforced while copying, so a file growing after it was checked is still refused.
    """
    base = root(state_dir)
    digest = hashlib.sha256()
    size = 0
    tmp_fd, tmp_name = tempfile.mkstemp(prefix=".incoming-", dir=base)
    try:
        with os.fdopen(tmp_fd, "wb") as out:
            while chunk := os.read(fd, CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise Invalid(
                        f"{name} is larger than the {max_bytes // (1 << 20)} MiB allowed per file; "
                        "make it smaller (aggregate, split) before asking for release",
                        reason="too_large",
                    )
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        sha = digest.hexdigest()
        final = base / sha[:2] / sha
        final.parent.mkdir(exist_ok=True, mode=0o700)
        os.chmod(tmp_name, 0o444)
        if final.exists():
            os.unlink(tmp_name)  # same name, same bytes (checked again on every read)
        else:
            os.rename(tmp_name, final)
            dir_fd = os.open(final.parent, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        return sha, size
    except BaseException:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
        raise


def verify(state_dir: Path, sha256: str, expected_size: int | None = None, copy_to: BinaryIO | None = None) -> None:
    """The one blob verification: the stored bytes hash to their name (and have the expected size),
    else NotFound (`store_missing`) or StoreTampered. Bytes are also written to `copy_to` as read, so a
    caller can hand on exactly the bytes that were checked."""
    path = blob_path(state_dir, sha256)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise NotFound(
            "the reviewed copy of this file is missing from the quarantine store; ask an administrator",
            detail=f"missing blob {path}", reason="store_missing",
        ) from None
    digest = hashlib.sha256()
    size = 0
    with os.fdopen(fd, "rb") as src:
        while chunk := src.read(CHUNK):
            digest.update(chunk)
            if copy_to is not None:
                copy_to.write(chunk)
            size += len(chunk)
    if digest.hexdigest() != sha256 or (expected_size is not None and size != expected_size):
        raise StoreTampered(
            "the stored copy of this file no longer matches what was reviewed, so it is not released; "
            "an administrator has to investigate",
            detail=f"blob {path} hashes to {digest.hexdigest()} ({size} bytes)",
        )


def open_verified(state_dir: Path, sha256: str, expected_size: int | None = None) -> BinaryIO:
    """A private copy of the blob, positioned at 0, whose bytes were checked against their sha256."""
    spool = tempfile.SpooledTemporaryFile(max_size=8 * CHUNK)
    try:
        verify(state_dir, sha256, expected_size, copy_to=spool)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool


def read_head(state_dir: Path, sha256: str, limit: int) -> bytes:
    """First `limit` bytes of a blob, for previews (not for release)."""
    with open(blob_path(state_dir, sha256), "rb") as fh:
        return fh.read(limit)
