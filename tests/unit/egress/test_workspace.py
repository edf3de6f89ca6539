"""Workspace reads never leave the folder and never follow links; special and oversize files are refused."""

import os

import pytest

from enclave.errors import Invalid, NotFound, PermissionDenied

from egress_review import workspace


@pytest.fixture
def ws(tmp_path):
    root = tmp_path / "ws"
    (root / "out").mkdir(parents=True)
    (root / "out" / "t.csv").write_text("a,b\n1,2\n")
    (tmp_path / "secret.csv").write_text("id,dob\n1,1970-01-01\n")
    return root


@pytest.mark.parametrize("rel", [
    "../secret.csv", "out/../../secret.csv", "/etc/passwd", "%2e%2e/secret.csv", "%252e%252e/secret.csv",
    "out/..%2f..%2fsecret.csv", "..\\secret.csv", "out/\x00.csv", "~/x", "./out/t.csv",
], ids=["dotdot", "nested-dotdot", "absolute", "encoded", "double-encoded", "encoded-slash", "backslash",
        "nul", "home", "dot"])
def test_traversal_is_refused(ws, rel):
    with pytest.raises(Invalid):
        workspace.open_file(ws, rel, 1 << 20)


def test_plain_file_opens(ws):
    fd = workspace.open_file(ws, "out/t.csv", 1 << 20)
    try:
        assert os.read(fd, 100) == b"a,b\n1,2\n"
    finally:
        os.close(fd)


def test_symlinked_file_is_refused(ws, tmp_path):
    os.symlink(tmp_path / "secret.csv", ws / "link.csv")
    with pytest.raises(PermissionDenied, match="link"):
        workspace.open_file(ws, "link.csv", 1 << 20)


def test_symlinked_folder_on_the_way_is_refused(ws, tmp_path):
    os.symlink(tmp_path, ws / "up")
    with pytest.raises(PermissionDenied, match="link"):
        workspace.open_file(ws, "up/secret.csv", 1 << 20)


def test_hard_link_is_refused(ws, tmp_path):
    os.link(tmp_path / "secret.csv", ws / "hard.csv")
    with pytest.raises(PermissionDenied, match="hard links"):
        workspace.open_file(ws, "hard.csv", 1 << 20)


def test_fifo_is_refused_without_blocking(ws):
    os.mkfifo(ws / "pipe.csv")
    with pytest.raises(PermissionDenied, match="not a regular file"):
        workspace.open_file(ws, "pipe.csv", 1 << 20)


def test_folder_is_refused(ws):
    with pytest.raises(PermissionDenied, match="not a regular file"):
        workspace.open_file(ws, "out", 1 << 20)


def test_oversize_is_refused(ws):
    (ws / "big.csv").write_bytes(b"x" * 2000)
    with pytest.raises(Invalid, match="more than"):
        workspace.open_file(ws, "big.csv", 1000)


def test_missing_file_and_workspace(ws, tmp_path):
    with pytest.raises(NotFound):
        workspace.open_file(ws, "nope.csv", 1 << 20)
    with pytest.raises(NotFound, match="workspace"):
        workspace.listing(tmp_path / "nowhere")


def test_listing_marks_links_and_special_files_refused(ws, tmp_path):
    os.symlink(tmp_path / "secret.csv", ws / "link.csv")
    os.link(tmp_path / "secret.csv", ws / "hard.csv")
    os.mkfifo(ws / "pipe")
    entries = {e.name: e for e in workspace.listing(ws)}
    assert entries["out"].kind == "dir"
    assert entries["link.csv"].kind == "refused" and "link" in entries["link.csv"].reason
    assert entries["hard.csv"].kind == "refused" and entries["pipe"].kind == "refused"
    assert [e.name for e in workspace.listing(ws, "out")] == ["t.csv"]
