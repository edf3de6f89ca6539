"""The web app: the pages router for people and the API router for programs, over the same service
calls, behind one login gate, with one error handler.

Routes stay thin: identify the caller (`web.caller`), open one transaction, call one service function,
render. Refusals are EnclaveErrors raised by the services/permissions and turned into a page or a JSON
body by the single error handler below (no per-view try/except).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse

from enclave.errors import EnclaveError

from egress_review import api, pages
from egress_review.auth import HubOAuthGate, NeedsLogin
from egress_review.web import TEMPLATES

log = logging.getLogger(__name__)
CSP = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'self'"


def add_security_headers(app: FastAPI, csp: str) -> None:
    """The headers every answer of an enclave web service carries (this one and the admin pages):
    its CSP, no sniffing, no referrer outside, and nothing kept in a cache."""

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        resp = await call_next(request)
        resp.headers.setdefault("Content-Security-Policy", csp)
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("Referrer-Policy", "same-origin")
        resp.headers.setdefault("Cache-Control", "no-store")
        return resp


def create_app(settings, gate=None, prefix: str = "/services/egress") -> FastAPI:
    """The service at `prefix`; `gate` says who is calling (the hub's OAuth unless a test passes its own)."""
    prefix = "/" + prefix.strip("/")
    gate = gate or HubOAuthGate(prefix)
    app = FastAPI(
        title="Enclave egress review", version="1",
        description="Release requests for outputs leaving the research enclave: submit, check, review, release.",
        openapi_url=f"{prefix}/api/openapi.json", docs_url=f"{prefix}/api/docs", redoc_url=None,
    )
    app.state.settings, app.state.gate, app.state.prefix = settings, gate, prefix

    def wants_json(request: Request) -> bool:
        return request.url.path.startswith(f"{prefix}/api/") or "application/json" in request.headers.get("accept", "")

    @app.exception_handler(EnclaveError)
    async def refused(request: Request, exc: EnclaveError):
        """The one place a refusal becomes a response (403/404/400/409 page or JSON; login redirect)."""
        if isinstance(exc, NeedsLogin):
            if wants_json(request) or request.method != "GET":
                return JSONResponse({"error": exc.reason, "message": "log in through the hub first"}, 401)
            return gate.login(request)
        log.info("refused %s %s: %s (%s)", request.method, request.url.path, exc.reason, exc.detail)
        if wants_json(request):
            return JSONResponse({"error": exc.reason, "message": exc.message}, status_code=exc.status)
        return TEMPLATES.TemplateResponse(request, "error.html", {"prefix": prefix, "error": exc},
                                          status_code=exc.status)

    add_security_headers(app, CSP)

    app.include_router(api.router, prefix=prefix)
    app.include_router(pages.router, prefix=prefix)

    @app.get(f"{prefix}", include_in_schema=False)
    def bare():
        return RedirectResponse(f"{prefix}/", status_code=302)

    return app
