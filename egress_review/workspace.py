"""Safe reading of a researcher's workspace: never outside it, never through a link.

Paths come from browsers and API clients, so they are cleaned first (no absolute paths, no `..`, no
backslashes or NUL, also after percent-decoding) and then opened one component at a time relative to
the already-open parent folder with O_NOFOLLOW, so a symlink anywhere on the way, or swapped in while we
walk, is refused rather than followed. The final file must be a regular file with a single hard link
(a second link could be a file from outside the workspace) and within the size limit.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from enclave import paths
from enclave.errors import Invalid, NotFound, PermissionDenied

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def clean(rel: str) -> list[str]:
    """Components of a workspace-relative path, or Invalid for anything that could leave the folder."""
    if not isinstance(rel, str) or "\x00" in rel or "\\" in rel:
        raise Invalid(f"'{rel}' is not an allowed file path", reason="bad_path")
    candidates = {rel, unquote(rel), unquote(unquote(rel))}
    for cand in candidates:
        if cand.startswith("/") or cand.startswith("~"):
            raise Invalid(f"'{rel}' is an absolute path; give the path inside your workspace",
                          reason="bad_path")
        if any(part in ("..", ".") for part in cand.split("/")):
            raise Invalid(f"'{rel}' leaves or names the workspace folder itself; give a path inside it",
                          reason="bad_path")
    parts = [p for p in rel.split("/") if p]
    return parts


def root_for(state_dir: Path, project: str, username: str) -> Path:
    return paths.workspace(state_dir, project, username)


def _open_dir(root: Path, parts: list[str]) -> int:
    try:
        fd = os.open(root, _DIR_FLAGS)
    except FileNotFoundError:
        raise NotFound("your workspace for this project does not exist yet; start your notebook once",
                       reason="no_workspace") from None
    except OSError:
        raise PermissionDenied("your workspace folder is not a plain folder", reason="bad_workspace") from None
    try:
        for part in parts:
            try:
                nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                raise NotFound(f"'{'/'.join(parts)}' does not exist in your workspace") from None
            except OSError:
                raise PermissionDenied(
                    f"'{'/'.join(parts)}' goes through a link or something that is not a folder; "
                    "only plain folders inside your workspace can be opened", reason="link_refused",
                ) from None
            os.close(fd)
            fd = nxt
        return fd
    except BaseException:
        os.close(fd)
        raise


@dataclass
class Entry:
    name: str
    path: str
    kind: str  # dir | file | refused
    size: int = 0
    reason: str = ""


def listing(root: Path, rel: str = "") -> list[Entry]:
    """What is in one folder of the workspace; links and special files are shown as refused."""
    parts = clean(rel) if rel else []
    fd = _open_dir(root, parts)
    try:
        entries = []
        with os.scandir(fd) as it:
            for e in it:
                st = e.stat(follow_symlinks=False)
                p = "/".join(parts + [e.name])
                if stat.S_ISDIR(st.st_mode):
                    entries.append(Entry(e.name, p, "dir"))
                elif stat.S_ISLNK(st.st_mode):
                    entries.append(Entry(e.name, p, "refused", 0, "symbolic link"))
                elif not stat.S_ISREG(st.st_mode):
                    entries.append(Entry(e.name, p, "refused", 0, "not a regular file"))
                elif st.st_nlink > 1:
                    entries.append(Entry(e.name, p, "refused", st.st_size, "has other hard links"))
                else:
                    entries.append(Entry(e.name, p, "file", st.st_size))
        return sorted(entries, key=lambda x: (x.kind != "dir", x.name))
    finally:
        os.close(fd)


def open_file(root: Path, rel: str, max_bytes: int) -> int:
    """An open descriptor of a regular, singly-linked file inside the workspace (caller closes it)."""
    parts = clean(rel)
    if not parts:
        raise Invalid("no file named", reason="bad_path")
    dir_fd = _open_dir(root, parts[:-1])
    try:
        try:
            fd = os.open(parts[-1], _FILE_FLAGS, dir_fd=dir_fd)
        except FileNotFoundError:
            raise NotFound(f"'{rel}' does not exist in your workspace") from None
        except OSError:
            raise PermissionDenied(f"'{rel}' is a link; only plain files can be submitted (copy the file "
                                   "into your workspace instead)", reason="link_refused") from None
    finally:
        os.close(dir_fd)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise PermissionDenied(f"'{rel}' is not a regular file (folder, device or pipe); only plain "
                                   "files can be submitted", reason="not_regular")
        if st.st_nlink > 1:
            raise PermissionDenied(f"'{rel}' has other hard links; submit a copy that is not linked "
                                   "elsewhere (cp it to a new name)", reason="hard_link_refused")
        if st.st_size > max_bytes:
            raise Invalid(f"'{rel}' is {st.st_size} bytes, more than the {max_bytes} allowed per file",
                          reason="too_large")
        os.set_blocking(fd, True)
        return fd
    except BaseException:
        os.close(fd)
        raise


def write_new_file(root: Path, folder: str, name: str, data: bytes) -> str:
    """Write `data` as a new file `folder/name` of the workspace (a free name: `name (2).py`... when taken)
    without following any link the researcher may have planted; returns its workspace-relative path.
    Owned by the researcher's uid, as if they had saved it."""
    uid, gid = paths.WORKSPACE_OWNER
    if not root.exists():
        root.parent.mkdir(parents=True, exist_ok=True, mode=0o711)
        root.mkdir(mode=0o700)
        os.chown(root, uid, gid)
    parts = clean(folder)
    fd = _open_dir(root, [])
    try:
        for part in parts:
            try:
                os.mkdir(part, mode=0o755, dir_fd=fd)
                os.chown(part, uid, gid, dir_fd=fd, follow_symlinks=False)
            except FileExistsError:
                pass
            nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)  # a link here is refused (O_NOFOLLOW)
            os.close(fd)
            fd = nxt
        stem, dot, suffix = name.rpartition(".")
        for n in range(1, 100):
            candidate = name if n == 1 else f"{stem} ({n}){dot}{suffix}"
            try:
                out = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644,
                              dir_fd=fd)
            except FileExistsError:
                continue
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(out, view):]
                os.fchown(out, uid, gid)
            finally:
                os.close(out)
            return "/".join(parts + [candidate])
        raise Invalid(f"'{folder}' already holds 99 files called like '{name}'", reason="name_taken")
    finally:
        os.close(fd)
