"""A contents manager that will not move a whole data file through the browser.

Reads (`GET /api/contents/<path>` with content) of one file larger than max_read_bytes and writes
(`PUT`, including the file browser's chunked uploads, counted cumulatively) larger than
max_write_bytes are refused with 413 and a message a researcher understands. Listing folders, opening
and saving ordinary notebooks, renaming, deleting and checkpoints work as before.

Links: a symbolic link whose target lies outside the workspace (`ln -s /data/x ~/work/x` from a
terminal, or a linked folder) is never followed: opening or writing through it answers 403, and a
folder listing leaves it out. Links inside the workspace work as before.

Each refusal is reported to the hub's audit log (`enclave_policy.report`, without waiting). The kernel
still reads /data directly: that is the point of the enclave, and what it shows on screen is accepted.
"""

from __future__ import annotations

import contextvars
import errno
import json
import os

from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager
from tornado.web import HTTPError
from traitlets import Integer

from enclave_policy.limits import DEFAULT_MAX_READ_BYTES, DEFAULT_MAX_WRITE_BYTES, human, release_url
from enclave_policy.report import report_refusal


def model_size(model: dict) -> int:
    """Bytes the model's content will take on disk (close enough for a limit)."""
    content = model.get("content")
    if content is None:
        return 0
    if model.get("type") == "notebook":
        return len(json.dumps(content).encode("utf-8"))
    if model.get("format") == "base64":
        text = content if isinstance(content, str) else ""
        return (len(text) * 3) // 4
    if isinstance(content, str):
        return len(content.encode("utf-8"))
    return len(json.dumps(content).encode("utf-8"))


_LISTING = contextvars.ContextVar("enclave_listing", default=False)  # inside a folder listing (this task)


class SizeLimitedContentsManager(AsyncLargeFileManager):
    max_read_bytes = Integer(
        DEFAULT_MAX_READ_BYTES,
        config=True,
        help="Largest single file the contents API sends to the browser (bytes).",
    )
    max_write_bytes = Integer(
        DEFAULT_MAX_WRITE_BYTES,
        config=True,
        help="Largest single file the contents API writes, uploads included (bytes).",
    )

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.log.info(
            "enclave policy: contents API reads up to %s, writes up to %s per file",
            human(self.max_read_bytes), human(self.max_write_bytes),
        )

    def _size_on_disk(self, path: str) -> int | None:
        """Bytes of the file at `path` as it is now; None when there is no such file (or a folder)."""
        os_path = self._get_os_path(path.strip("/"))
        return os.path.getsize(os_path) if os.path.isfile(os_path) else None

    def _refusal(self, doing: str, kind: str, path: str, size: int | None, message: str,
                 status: int = 413) -> HTTPError:
        """Log and report one refusal; the caller raises the HTTPError returned."""
        self.log.warning("enclave policy: refused %s %s (%s bytes)", doing, path, size)
        report_refusal(kind, path, size)
        return HTTPError(status, message)

    def _leaves_workspace(self, path: str) -> bool:
        """Whether `path`, with every link on the way resolved, ends outside the workspace."""
        root = os.path.realpath(self.root_dir)
        real = os.path.realpath(self._get_os_path(path.strip("/")))
        return real != root and not real.startswith(root + os.sep)

    def _check_inside(self, path: str, doing: str) -> None:
        if not self._leaves_workspace(path):
            return
        if _LISTING.get():  # a folder listing: leave the entry out (jupyter_server skips EACCES quietly)
            raise OSError(errno.EACCES, "link out of the workspace", path)
        raise self._refusal(
            doing, "link_outside", path, None,
            f"{path} is a link to somewhere outside your workspace; the enclave does not follow it. "
            "Read data from a notebook (e.g. pandas on /data) instead.", status=403,
        )

    async def get(self, path, content=True, type=None, format=None, **kwargs):
        self._check_inside(path, "opening")
        if content and os.path.isdir(self._get_os_path(path.strip("/"))):
            token = _LISTING.set(True)
            try:
                return await super().get(path, content=content, type=type, format=format, **kwargs)
            finally:
                _LISTING.reset(token)
        size = self._size_on_disk(path) if content else None
        if size is not None and size > self.max_read_bytes:
            raise self._refusal(
                "reading", "read_too_large", path, size,
                f"{path} is {human(size)}; the enclave shows files up to "
                f"{human(self.max_read_bytes)} in the browser. Open it from a notebook "
                f"(e.g. pandas) instead; to take results out, ask for a release at {release_url()}",
            )
        return await super().get(path, content=content, type=type, format=format, **kwargs)

    async def save(self, model, path=""):
        self._check_inside(path, "writing")
        size = model_size(model)
        chunk = model.get("chunk")
        if chunk is not None and chunk != 1:
            # Later chunks of an upload append to the file written so far.
            size += self._size_on_disk(path) or 0
        if size > self.max_write_bytes:
            raise self._refusal(
                "writing", "write_too_large", path, size,
                f"{path} would be {human(size)}; the enclave accepts files up to "
                f"{human(self.max_write_bytes)} from the browser. Data comes in through the "
                "project's data import, not by upload.",
            )
        return await super().save(model, path)
