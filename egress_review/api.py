"""The JSON API router (OpenAPI at <prefix>/api/openapi.json): thin handlers over the same service calls
the pages router makes (one transaction, one service function, a view from `queries`)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from enclave import db

from egress_review import claims, imports, queries, review, submission, web, workflow
from egress_review.web import Ctx, caller
from egress_review.workflow import Decision, RequestStatus

router = APIRouter(prefix="/api")


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


class PackageAskIn(BaseModel):
    project: str
    name: str = Field(description="the package's name as on PyPI or CRAN")
    versions: str = Field("", description="a version or range, e.g. '==0.30' (empty: any)")
    ecosystem: Literal["python", "r"] = "python"
    why: str = Field(description="what analysis it is for")


@router.get("/me", tags=["people"])
def me(ctx: Ctx = Depends(caller)):
    p = ctx.person
    return {"name": p.username, "role": p.role.value, "projects": sorted(p.projects),
            "csrf": ctx.ident.csrf, "reviewer": p.is_reviewer}


@router.get("/workflow", tags=["workflow"])
def workflow_tables():
    return {"transitions": {s.value: sorted(n.value for n in nxt) for s, nxt in workflow.VALID_TRANSITIONS.items()},
            "owners": {s.value: o.value for s, o in workflow.STATUS_OWNERS.items()},
            "events": {s.value: e for s, e in workflow.STATUS_EVENTS.items()}}


@router.get("/projects/{project}/workspace", tags=["researcher"])
def workspace_listing(project: str, path: str = "", ctx: Ctx = Depends(caller)):
    return web.listing(ctx, project, path)


@router.post("/requests", status_code=201, tags=["researcher"])
def submit(body: RequestIn, ctx: Ctx = Depends(caller)):
    groups = [submission.GroupSpec(g.name, g.context, g.controls, list(g.paths)) for g in body.groups]
    with db.transaction(ctx.url) as s:
        req = submission.submit(s, ctx.settings, ctx.person, body.project, groups)
        return queries.request_view(s, ctx.person, req.id)


@router.post("/imports/packages", status_code=201, tags=["researcher"])
def ask_package(body: PackageAskIn, ctx: Ctx = Depends(caller)):
    with db.transaction(ctx.url) as s:
        req = imports.ask_package(s, ctx.settings, ctx.person, body.project, body.ecosystem, body.name,
                                  body.versions, body.why)
        return queries.request_view(s, ctx.person, req.id)


@router.post("/imports/code", status_code=201, tags=["researcher"])
async def bring_code(request: Request, ctx: Ctx = Depends(caller)):
    """multipart/form-data: `project`, `why`, and one or more `files`."""
    form = await request.form()
    files = await web.uploads(request)
    with db.transaction(ctx.url) as s:
        req = imports.bring_code(s, ctx.settings, ctx.person, str(form.get("project", "")), str(form.get("why", "")),
                                 files)
        return queries.request_view(s, ctx.person, req.id)


@router.get("/requests", tags=["researcher"])
def mine(ctx: Ctx = Depends(caller)):
    with db.transaction(ctx.url) as s:
        return {"requests": [queries.summary(x) for x in submission.requests_of(s, ctx.person.username)]}


@router.get("/queue", tags=["steward"])
def queue(status: RequestStatus | None = None, project: str | None = None,
          page: int = Query(1, ge=1), ctx: Ctx = Depends(caller)):
    with db.transaction(ctx.url) as s:
        return queries.queue(s, ctx.person, status.value if status else None, project, page)


@router.get("/requests/{request_id}", tags=["researcher", "steward"])
def request(request_id: int, ctx: Ctx = Depends(caller)):
    with db.transaction(ctx.url) as s:
        return queries.request_view(s, ctx.person, request_id)


@router.post("/requests/{request_id}/withdraw", tags=["researcher"])
def withdraw(request_id: int, ctx: Ctx = Depends(caller)):
    with db.transaction(ctx.url) as s:
        submission.withdraw(s, ctx.person, request_id)
        return queries.request_view(s, ctx.person, request_id)


@router.post("/requests/{request_id}/resubmit", tags=["researcher"])
def resubmit(request_id: int, ctx: Ctx = Depends(caller)):
    with db.transaction(ctx.url) as s:
        submission.resubmit(s, ctx.person, request_id)
        return queries.request_view(s, ctx.person, request_id)


@router.post("/requests/{request_id}/claim", tags=["steward"])
def claim(request_id: int, ctx: Ctx = Depends(caller)):
    with db.transaction(ctx.url) as s:
        claims.claim(s, ctx.person, request_id)
        return queries.request_view(s, ctx.person, request_id)


@router.post("/requests/{request_id}/unclaim", tags=["steward"])
def unclaim(request_id: int, ctx: Ctx = Depends(caller)):
    with db.transaction(ctx.url) as s:
        claims.unclaim(s, ctx.person, request_id)
        return queries.request_view(s, ctx.person, request_id)


@router.post("/files/{file_id}/replace", tags=["researcher"])
def replace(file_id: int, ctx: Ctx = Depends(caller)):
    with db.transaction(ctx.url) as s:
        new = submission.replace_file(s, ctx.settings, ctx.person, file_id)
        return queries.file_view(ctx.person, new.group.request, new)


@router.post("/files/{file_id}/reviews", tags=["steward"])
def decide(file_id: int, body: DecisionIn, ctx: Ctx = Depends(caller)):
    with db.transaction(ctx.url) as s:
        rv = review.decide(s, ctx.person, file_id, body.decision, body.comment, body.override_reason,
                           settings=ctx.settings)
        return queries.request_view(s, ctx.person, rv.file.group.request_id)


@router.get("/files/{file_id}/download", tags=["researcher"])
def download(file_id: int, ctx: Ctx = Depends(caller)):
    return web.download(ctx, file_id)
