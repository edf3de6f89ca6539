"""Refuse every handler whose job is to hand a file's bytes to the browser as a download.

`/files/` (raw files, also behind "Download" and "Open in new browser tab"), `/view/` (an iframe on
`/files/`) and nbconvert (`/nbconvert/<format>/<path>?download=true` and the POST form) all go through
jupyter_server's `@authorized` check; this authorizer answers it with a 403 whose message names the
release request page. Everything else is allowed, as with the default AllowAllAuthorizer (JupyterHub
has already checked who may reach this server). Each refusal is also reported to the hub's audit log
(`enclave_policy.report`), without waiting for it.
"""

from __future__ import annotations

from urllib.parse import unquote

from jupyter_server.auth.authorizer import AllowAllAuthorizer
from jupyter_server.base.handlers import AuthenticatedFileHandler
from jupyter_server.files.handlers import FilesHandler
from jupyter_server.view.handlers import ViewHandler
from tornado.web import HTTPError

from enclave_policy.limits import release_url
from enclave_policy.report import report_refusal

DOWNLOAD_HANDLERS = (AuthenticatedFileHandler, FilesHandler, ViewHandler)
REFUSED_RESOURCES = {"nbconvert"}


def what_was_refused(handler) -> dict | None:
    """kind (files|view|nbconvert), the file's path and the nbconvert format, from the request URL;
    None for a permission question that is not a download (e.g. `/api/me?permissions=...`)."""
    path = handler.request.path
    base = handler.base_url or "/"
    rel = path[len(base):] if path.startswith(base) else path.lstrip("/")
    head, _, rest = unquote(rel).partition("/")
    if head == "nbconvert":
        fmt, _, file_path = rest.partition("/")
        return {"kind": "nbconvert", "path": file_path or "(posted notebook)", "fmt": fmt or None}
    if head in ("files", "view"):
        return {"kind": head, "path": rest or "/"}
    if isinstance(handler, DOWNLOAD_HANDLERS):
        return {"kind": "files", "path": unquote(rel) or "/"}
    return None


def refusal_message() -> str:
    return (
        "Downloads are switched off in the enclave: files leave only after an output check. "
        f"Ask for a release at {release_url()}"
    )


class NoDownloadAuthorizer(AllowAllAuthorizer):
    """AllowAllAuthorizer minus the download handlers."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.log.info("enclave policy: /files/, /view/ and nbconvert refused; releases at %s", release_url())

    def is_authorized(self, handler, user, action, resource) -> bool:
        if isinstance(handler, DOWNLOAD_HANDLERS) or resource in REFUSED_RESOURCES:
            handler.log.warning("enclave policy: refused %s %s", handler.request.method, handler.request.path)
            refused = what_was_refused(handler)
            if refused:
                report_refusal(**refused)
            # Raised rather than returning False so the page says why and where to go instead.
            raise HTTPError(403, refusal_message(), reason="Download refused")
        return super().is_authorized(handler, user, action, resource)
