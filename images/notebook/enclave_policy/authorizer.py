"""Refuse every handler whose job is to hand a file's bytes to the browser as a download.

`/files/` (raw files, also behind "Download" and "Open in new browser tab"), `/view/` (an iframe on
`/files/`) and nbconvert (`/nbconvert/<format>/<path>?download=true` and the POST form) all go through
jupyter_server's `@authorized` check; this authorizer answers it with a 403 whose message names the
release request page. Everything else is allowed, as with the default AllowAllAuthorizer (JupyterHub
has already checked who may reach this server).
"""

from __future__ import annotations

from jupyter_server.auth.authorizer import AllowAllAuthorizer
from jupyter_server.base.handlers import AuthenticatedFileHandler
from jupyter_server.files.handlers import FilesHandler
from jupyter_server.view.handlers import ViewHandler
from tornado.web import HTTPError

from enclave_policy.limits import release_url

DOWNLOAD_HANDLERS = (AuthenticatedFileHandler, FilesHandler, ViewHandler)
REFUSED_RESOURCES = {"nbconvert"}


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
            # Raised rather than returning False so the page says why and where to go instead.
            raise HTTPError(403, refusal_message(), reason="Download refused")
        return super().is_authorized(handler, user, action, resource)
