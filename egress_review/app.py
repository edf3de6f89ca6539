"""The web app: HTML pages for people and a JSON API (OpenAPI at <prefix>/api/openapi.json).

Handlers stay thin: identify the caller (auth gate), open one transaction, call one service function,
render. Refusals are EnclaveErrors raised by the services/permissions and turned into a page or a JSON
body by the single error handler below (no per-view try/except).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field

from hub import db
from hub import projects as projects_svc
from hub.errors import EnclaveError

from . import downloads, permissions, preview, queries, review, store, submission, workflow, workspace
from .auth import HubOAuthGate, Identity, NeedsLogin, check_csrf
from .people import person_for
from .permissions import Person
from .workflow import Decision, RequestStatus

log = logging.getLogger(__name__)
TEMPLATES = Path(__file__).resolve().parent / "templates"
CSP = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'self'"


class GroupIn(BaseModel):
    name: str = Field(description="short name of the group")
    context: str = Field(description="what the outputs show")
    controls: str = Field(description="what disclosure controls were applied")
    paths: list[str] = Field(description="files, relative to your workspace")


class RequestIn(BaseModel):
    project: str
    groups: list[GroupIn]


class DecisionIn(BaseModel):
    decision: Decision
    comment: str = ""
    override_reason: str = ""


class Ctx:
    """The caller of one request: identity, enclave person, CSRF token."""

    def __init__(self, ident: Identity, person: Person):
        self.ident, self.person = ident, person


def create_app(settings, gate=None, prefix: str = "/services/egress") -> FastAPI:
    prefix = "/" + prefix.strip("/")
    gate = gate or HubOAuthGate(prefix)
    url = settings.database_url
    templates = Jinja2Templates(directory=str(TEMPLATES))
    app = FastAPI(
        title="Enclave egress review", version="1",
        description="Release requests for outputs leaving the research enclave: submit, check, review, release.",
        openapi_url=f"{prefix}/api/openapi.json", docs_url=f"{prefix}/api/docs", redoc_url=None,
    )
    app.state.settings, app.state.gate = settings, gate

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
        return templates.TemplateResponse(request, "error.html", {"prefix": prefix, "error": exc},
                                          status_code=exc.status)

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        resp = await call_next(request)
        resp.headers.setdefault("Content-Security-Policy", CSP)
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("Referrer-Policy", "same-origin")
        resp.headers.setdefault("Cache-Control", "no-store")
        return resp

    async def caller(request: Request) -> Ctx:
        ident = await gate.identify(request)
        if ident is None:
            raise NeedsLogin("login required")
        await check_csrf(request, ident)
        with db.transaction(url) as s:
            person = person_for(s, ident.name)
        return Ctx(ident, person)

    def page(request: Request, ctx: Ctx, name: str, **data) -> HTMLResponse:
        return templates.TemplateResponse(request, name, {
            "prefix": prefix, "me": ctx.person, "csrf": ctx.ident.csrf, **data})

    def back_to(req_id: int) -> RedirectResponse:
        return RedirectResponse(f"{prefix}/requests/{req_id}", status_code=303)

    r = APIRouter(prefix=prefix)

    # -- login -------------------------------------------------------------------------------------
    @r.get("/oauth_callback", include_in_schema=False)
    async def oauth_callback(request: Request):
        return await gate.callback(request)

    # -- JSON API ----------------------------------------------------------------------------------
    @r.get("/api/me", tags=["people"])
    def api_me(ctx: Ctx = Depends(caller)):
        p = ctx.person
        return {"name": p.username, "role": p.role.value, "projects": sorted(p.projects),
                "csrf": ctx.ident.csrf, "reviewer": p.is_reviewer}

    @r.get("/api/workflow", tags=["workflow"])
    def api_workflow():
        return {"transitions": {s.value: sorted(n.value for n in nxt) for s, nxt in workflow.VALID_TRANSITIONS.items()},
                "owners": {s.value: o.value for s, o in workflow.STATUS_OWNERS.items()},
                "events": {s.value: e for s, e in workflow.STATUS_EVENTS.items()}}

    def _listing(ctx: Ctx, project: str, path: str) -> dict:
        with db.transaction(url) as s:
            proj = projects_svc.get(s, project)
            permissions.check_can_browse(ctx.person, proj)
        root = workspace.root_for(settings.state_dir, project, ctx.person.username)
        entries = workspace.listing(root, path)
        return {"project": project, "path": path, "entries": [e.__dict__ for e in entries]}

    @r.get("/api/projects/{project}/workspace", tags=["researcher"])
    def api_workspace(project: str, path: str = "", ctx: Ctx = Depends(caller)):
        return _listing(ctx, project, path)

    @r.post("/api/requests", status_code=201, tags=["researcher"])
    def api_submit(body: RequestIn, ctx: Ctx = Depends(caller)):
        groups = [submission.GroupSpec(g.name, g.context, g.controls, list(g.paths)) for g in body.groups]
        with db.transaction(url) as s:
            req = submission.submit(s, settings, ctx.person, body.project, groups)
            return queries.request_view(s, ctx.person, req.id)

    @r.get("/api/requests", tags=["researcher"])
    def api_mine(ctx: Ctx = Depends(caller)):
        with db.transaction(url) as s:
            return {"requests": [queries.summary(x) for x in submission.requests_of(s, ctx.person.username)]}

    @r.get("/api/queue", tags=["steward"])
    def api_queue(status: RequestStatus | None = None, project: str | None = None,
                  page: int = Query(1, ge=1), ctx: Ctx = Depends(caller)):
        with db.transaction(url) as s:
            return queries.queue(s, ctx.person, status.value if status else None, project, page)

    @r.get("/api/requests/{request_id}", tags=["researcher", "steward"])
    def api_request(request_id: int, ctx: Ctx = Depends(caller)):
        with db.transaction(url) as s:
            return queries.request_view(s, ctx.person, request_id)

    @r.post("/api/requests/{request_id}/withdraw", tags=["researcher"])
    def api_withdraw(request_id: int, ctx: Ctx = Depends(caller)):
        with db.transaction(url) as s:
            submission.withdraw(s, ctx.person, request_id)
            return queries.request_view(s, ctx.person, request_id)

    @r.post("/api/requests/{request_id}/resubmit", tags=["researcher"])
    def api_resubmit(request_id: int, ctx: Ctx = Depends(caller)):
        with db.transaction(url) as s:
            submission.resubmit(s, ctx.person, request_id)
            return queries.request_view(s, ctx.person, request_id)

    @r.post("/api/files/{file_id}/replace", tags=["researcher"])
    def api_replace(file_id: int, ctx: Ctx = Depends(caller)):
        with db.transaction(url) as s:
            new = submission.replace_file(s, settings, ctx.person, file_id)
            return queries.file_view(ctx.person, new.group.request, new)

    @r.post("/api/files/{file_id}/reviews", tags=["steward"])
    def api_review(file_id: int, body: DecisionIn, ctx: Ctx = Depends(caller)):
        with db.transaction(url) as s:
            rv = review.decide(s, ctx.person, file_id, body.decision, body.comment, body.override_reason)
            return queries.request_view(s, ctx.person, rv.file.group.request_id)

    def _download(ctx: Ctx, file_id: int) -> StreamingResponse:
        name, data, size, sha = downloads.fetch(url, settings.state_dir, ctx.person.username, file_id)

        def chunks():
            with data:
                while chunk := data.read(1 << 20):
                    yield chunk

        safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in name) or "file"
        return StreamingResponse(chunks(), media_type="application/octet-stream", headers={
            "Content-Disposition": f'attachment; filename="{safe}"', "Content-Length": str(size),
            "X-Content-SHA256": sha})

    @r.get("/api/files/{file_id}/download", tags=["researcher"])
    def api_download(file_id: int, ctx: Ctx = Depends(caller)):
        return _download(ctx, file_id)

    # -- pages ---------------------------------------------------------------------------------------
    @r.get("/", response_class=HTMLResponse, include_in_schema=False)
    def home(request: Request, ctx: Ctx = Depends(caller)):
        with db.transaction(url) as s:
            mine = [queries.summary(x) for x in submission.requests_of(s, ctx.person.username)]
        return page(request, ctx, "home.html", mine=mine, projects=sorted(ctx.person.projects))

    @r.get("/projects/{project}/browse", response_class=HTMLResponse, include_in_schema=False)
    def browse(request: Request, project: str, path: str = "", ctx: Ctx = Depends(caller)):
        listing = _listing(ctx, project, path)
        parent = "/".join(path.strip("/").split("/")[:-1]) if path.strip("/") else None
        return page(request, ctx, "browse.html", listing=listing, parent=parent)

    @r.post("/requests", include_in_schema=False)
    def submit_form(project: str = Form(...), group_name: str = Form(""), context: str = Form(""),
                    controls: str = Form(""), paths: list[str] = Form(default=[]), ctx: Ctx = Depends(caller)):
        with db.transaction(url) as s:
            req = submission.submit(s, settings, ctx.person, project,
                                    [submission.GroupSpec(group_name, context, controls, paths)])
            rid = req.id
        return back_to(rid)

    @r.get("/requests/{request_id}", response_class=HTMLResponse, include_in_schema=False)
    def request_page(request: Request, request_id: int, ctx: Ctx = Depends(caller)):
        with db.transaction(url) as s:
            view = queries.request_view(s, ctx.person, request_id)
            req = submission.get_request(s, request_id)
        previews = {}
        try:
            permissions.check_can_preview(ctx.person, req)
            for g in view["groups"]:
                for f in g["files"]:
                    raw = f"{prefix}/files/{f['id']}/raw"
                    try:
                        previews[f["id"]] = preview.render(settings.state_dir, f, raw, settings.egress.preview_rows)
                    except OSError:
                        previews[f["id"]] = '<p class="error">The stored copy cannot be read.</p>'
        except EnclaveError:
            previews = None
        return page(request, ctx, "request.html", r=view, previews=previews, Decision=Decision)

    @r.post("/requests/{request_id}/withdraw", include_in_schema=False)
    def withdraw_form(request_id: int, ctx: Ctx = Depends(caller)):
        with db.transaction(url) as s:
            submission.withdraw(s, ctx.person, request_id)
        return back_to(request_id)

    @r.post("/requests/{request_id}/resubmit", include_in_schema=False)
    def resubmit_form(request_id: int, ctx: Ctx = Depends(caller)):
        with db.transaction(url) as s:
            submission.resubmit(s, ctx.person, request_id)
        return back_to(request_id)

    @r.post("/files/{file_id}/replace", include_in_schema=False)
    def replace_form(file_id: int, ctx: Ctx = Depends(caller)):
        with db.transaction(url) as s:
            new = submission.replace_file(s, settings, ctx.person, file_id)
            rid = new.group.request_id
        return back_to(rid)

    @r.post("/files/{file_id}/review", include_in_schema=False)
    def review_form(file_id: int, decision: Decision = Form(...), comment: str = Form(""),
                    override_reason: str = Form(""), ctx: Ctx = Depends(caller)):
        with db.transaction(url) as s:
            rv = review.decide(s, ctx.person, file_id, decision, comment, override_reason)
            rid = rv.file.group.request_id
        return back_to(rid)

    @r.get("/files/{file_id}/download", include_in_schema=False)
    def download_page(file_id: int, ctx: Ctx = Depends(caller)):
        return _download(ctx, file_id)

    @r.get("/files/{file_id}/raw", include_in_schema=False)
    def raw(file_id: int, ctx: Ctx = Depends(caller)):
        """Quarantined bytes of an image or PDF for a reviewer's preview (sandboxed, never for researchers)."""
        with db.transaction(url) as s:
            req, f = submission.get_file(s, file_id)
            permissions.check_can_preview(ctx.person, req)
            sha, path = f.sha256, f.path
        mime = preview.RAW_TYPES.get(Path(path).suffix.lower())
        if mime is None:
            raise EnclaveError("this file type is shown inline on the request page only", reason="no_raw")
        return Response(store.read_head(settings.state_dir, sha, 64 << 20), media_type=mime, headers={
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; sandbox",
            "Content-Disposition": "inline"})

    @r.get("/queue", response_class=HTMLResponse, include_in_schema=False)
    def queue_page(request: Request, status: str = "", project: str = "", page_no: int = Query(1, alias="page", ge=1),
                   ctx: Ctx = Depends(caller)):
        st = None
        if status:
            try:
                st = RequestStatus(status).value
            except ValueError:
                raise EnclaveError(f"unknown status '{status}'", reason="bad_status") from None
        with db.transaction(url) as s:
            q = queries.queue(s, ctx.person, st, project or None, page_no)
        return page(request, ctx, "queue.html", q=q, status=status, project=project,
                    statuses=[x.value for x in RequestStatus])

    @r.get("/logout", include_in_schema=False)
    def logout():
        resp = RedirectResponse("/hub/logout", status_code=302)
        gate.logout(resp)
        return resp

    app.include_router(r)

    @app.get(f"{prefix}", include_in_schema=False)
    def bare():
        return RedirectResponse(f"{prefix}/", status_code=302)

    app.state.json_dumps = json.dumps
    return app
