"""The quarantine store keeps exactly the hashed bytes, read-only, and refuses tampered copies."""

import hashlib
import os
import stat

import pytest

from enclave.errors import Invalid

from egress_review import store


def _put(tmp_path, data: bytes, max_bytes=1 << 20):
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    fd = os.open(src, os.O_RDONLY)
    try:
        return store.put_fd(tmp_path / "state", fd, max_bytes)
    finally:
        os.close(fd)


def test_put_names_blob_by_sha256_and_makes_it_read_only(tmp_path):
    data = b"a,b\n1,2\n" * 1000
    sha, size = _put(tmp_path, data)
    assert sha == hashlib.sha256(data).hexdigest() and size == len(data)
    blob = store.blob_path(tmp_path / "state", sha)
    assert blob.parent.name == sha[:2] and blob.read_bytes() == data
    assert stat.S_IMODE(blob.stat().st_mode) == 0o444
    assert not [p for p in blob.parent.parent.iterdir() if p.name.startswith(".incoming")]
    assert _put(tmp_path, data) == (sha, size)  # same bytes: same blob


def test_open_verified_returns_the_bytes(tmp_path):
    sha, size = _put(tmp_path, b"hello")
    with store.open_verified(tmp_path / "state", sha, size) as fh:
        assert fh.read() == b"hello"


def test_tampered_blob_is_refused_not_served(tmp_path):
    sha, size = _put(tmp_path, b"safe table")
    blob = store.blob_path(tmp_path / "state", sha)
    os.chmod(blob, 0o644)
    blob.write_bytes(b"evil table")
    with pytest.raises(store.StoreTampered, match="no longer matches"):
        store.open_verified(tmp_path / "state", sha, size)


def test_oversize_is_refused_while_copying_and_leaves_nothing(tmp_path):
    with pytest.raises(Invalid, match="larger than"):
        _put(tmp_path, b"x" * 2048, max_bytes=1024)
    root = store.root(tmp_path / "state")
    assert [p for p in root.rglob("*") if p.is_file()] == []


def test_bad_names_are_refused(tmp_path):
    with pytest.raises(Invalid):
        store.blob_path(tmp_path, "../../etc/passwd")
