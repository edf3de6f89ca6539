"""The admin web app: people, projects and the audit log, behind the hub's login (admins only), with
one error handler (refusals from the core services become a page saying what to change)."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse

from enclave.errors import EnclaveError

from admin import audit_log, people, projects
from admin.web import TEMPLATES
from egress_review.app import add_security_headers
from egress_review.auth import HubOAuthGate, NeedsLogin

log = logging.getLogger(__name__)
CSP = "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; form-action 'self'"


def create_app(settings, gate=None, prefix: str = "/services/admin") -> FastAPI:
    prefix = "/" + prefix.strip("/")
    gate = gate or HubOAuthGate(prefix, cookie="admin-session", what="the admin pages")
    app = FastAPI(title="Enclave administration", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings, app.state.gate, app.state.prefix = settings, gate, prefix

    @app.exception_handler(EnclaveError)
    async def refused(request: Request, exc: EnclaveError):
        if isinstance(exc, NeedsLogin):
            return gate.login(request)
        log.info("refused %s %s: %s (%s)", request.method, request.url.path, exc.reason, exc.detail)
        return TEMPLATES.TemplateResponse(request, "admin_error.html", {"prefix": prefix, "error": exc},
                                          status_code=exc.status)

    add_security_headers(app, CSP)  # with no-store: enrolment links are shown once

    for router in (people.router, projects.router, audit_log.router):
        app.include_router(router, prefix=prefix)

    @app.get(f"{prefix}/oauth_callback", include_in_schema=False)
    async def oauth_callback(request: Request):
        return await gate.callback(request)

    @app.get(f"{prefix}", include_in_schema=False)
    @app.get(f"{prefix}/", include_in_schema=False)
    def home():
        return RedirectResponse(f"{prefix}/people", status_code=302)

    return app
