"""The HTML pages router: the same service calls as the API router, answered with pages and redirects
(forms post here, with the CSRF token checked by `web.caller`)."""

from __future__ import annotations

import datetime as dt
import statistics
from pathlib import Path

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from enclave import accounts, clock, db, notify, volumes
from enclave import projects as projects_svc
from enclave.errors import EnclaveError
from enclave.models import Role

from egress_review import claims, imports, permissions, preview, queries, review, store, submission, web
from egress_review.web import Ctx, caller, page
from egress_review.workflow import Decision, RequestStatus

router = APIRouter(include_in_schema=False)
OUTLIER_FACTOR = 3  # a person's daily volume this many times the day's median is marked on the volumes page


def _back_to(ctx: Ctx, req_id: int) -> RedirectResponse:
    return RedirectResponse(f"{ctx.prefix}/requests/{req_id}", status_code=303)


@router.get("/oauth_callback")
async def oauth_callback(request: Request):
    return await request.app.state.gate.callback(request)


@router.get("/", response_class=HTMLResponse)
def home(request: Request, ctx: Ctx = Depends(caller)):
    with db.transaction(ctx.url) as s:
        mine = [queries.summary(x) for x in submission.requests_of(s, ctx.person.username)]
        account = accounts.get(s, ctx.person.username)
        mail = {"email": account.email, "notify": account.notify}
    return page(request, ctx, "home.html", mine=mine, projects=sorted(ctx.person.projects), mail=mail)


@router.post("/me/notifications")
def notifications(notify_choice: str = Form(..., alias="notify"), ctx: Ctx = Depends(caller)):
    """A person's own choice: a message as things happen, or one daily digest."""
    with db.transaction(ctx.url) as s:
        notify.set_preferences(s, ctx.person.username, ctx.person.username, notify=notify_choice)
    return RedirectResponse(f"{ctx.prefix}/", status_code=303)


@router.get("/projects/{project}/browse", response_class=HTMLResponse)
def browse(request: Request, project: str, path: str = "", ctx: Ctx = Depends(caller)):
    listing = web.listing(ctx, project, path)
    parent = "/".join(path.strip("/").split("/")[:-1]) if path.strip("/") else None
    return page(request, ctx, "browse.html", listing=listing, parent=parent)


@router.post("/requests")
def submit(project: str = Form(...), group_name: str = Form(""), context: str = Form(""),
           controls: str = Form(""), paths: list[str] = Form(default=[]), ctx: Ctx = Depends(caller)):
    with db.transaction(ctx.url) as s:
        req = submission.submit(s, ctx.settings, ctx.person, project,
                                [submission.GroupSpec(group_name, context, controls, paths)])
        rid = req.id
    return _back_to(ctx, rid)


@router.post("/imports/packages")
def ask_package(project: str = Form(...), name: str = Form(""), versions: str = Form(""),
                ecosystem: str = Form("python"), why: str = Form(""), ctx: Ctx = Depends(caller)):
    with db.transaction(ctx.url) as s:
        rid = imports.ask_package(s, ctx.settings, ctx.person, project, ecosystem, name, versions, why).id
    return _back_to(ctx, rid)


@router.post("/imports/code")
async def bring_code(request: Request, ctx: Ctx = Depends(caller)):
    form = await request.form()
    files = await web.uploads(request)
    with db.transaction(ctx.url) as s:
        rid = imports.bring_code(s, ctx.settings, ctx.person, str(form.get("project", "")), str(form.get("why", "")),
                                 files).id
    return _back_to(ctx, rid)


@router.get("/requests/{request_id}", response_class=HTMLResponse)
def request_page(request: Request, request_id: int, ctx: Ctx = Depends(caller)):
    with db.transaction(ctx.url) as s:
        view = queries.request_view(s, ctx.person, request_id)
        req = submission.get_request(s, request_id)
    previews = {}
    try:
        permissions.check_can_preview(ctx.person, req)
        for g in view["groups"]:
            for f in g["files"]:
                raw_url = f"{ctx.prefix}/files/{f['id']}/raw"
                try:
                    previews[f["id"]] = preview.render(ctx.settings.state_dir, f, raw_url,
                                                       ctx.settings.egress.preview_rows)
                except OSError:
                    previews[f["id"]] = '<p class="error">The stored copy cannot be read.</p>'
    except EnclaveError:
        previews = None
    return page(request, ctx, "request.html", r=view, previews=previews, Decision=Decision)


@router.post("/requests/{request_id}/withdraw")
def withdraw(request_id: int, ctx: Ctx = Depends(caller)):
    with db.transaction(ctx.url) as s:
        submission.withdraw(s, ctx.person, request_id)
    return _back_to(ctx, request_id)


@router.post("/requests/{request_id}/resubmit")
def resubmit(request_id: int, ctx: Ctx = Depends(caller)):
    with db.transaction(ctx.url) as s:
        submission.resubmit(s, ctx.person, request_id)
    return _back_to(ctx, request_id)


@router.post("/requests/{request_id}/claim")
def claim(request_id: int, ctx: Ctx = Depends(caller)):
    with db.transaction(ctx.url) as s:
        claims.claim(s, ctx.person, request_id)
    return _back_to(ctx, request_id)


@router.post("/requests/{request_id}/unclaim")
def unclaim(request_id: int, ctx: Ctx = Depends(caller)):
    with db.transaction(ctx.url) as s:
        claims.unclaim(s, ctx.person, request_id)
    return _back_to(ctx, request_id)


@router.post("/files/{file_id}/replace")
def replace(file_id: int, ctx: Ctx = Depends(caller)):
    with db.transaction(ctx.url) as s:
        new = submission.replace_file(s, ctx.settings, ctx.person, file_id)
        rid = new.group.request_id
    return _back_to(ctx, rid)


@router.post("/files/{file_id}/review")
def decide(file_id: int, decision: Decision = Form(...), comment: str = Form(""),
           override_reason: str = Form(""), ctx: Ctx = Depends(caller)):
    with db.transaction(ctx.url) as s:
        rv = review.decide(s, ctx.person, file_id, decision, comment, override_reason, settings=ctx.settings)
        rid = rv.file.group.request_id
    return _back_to(ctx, rid)


@router.get("/files/{file_id}/download")
def download(file_id: int, ctx: Ctx = Depends(caller)):
    return web.download(ctx, file_id)


@router.get("/files/{file_id}/raw")
def raw(file_id: int, ctx: Ctx = Depends(caller)):
    """Quarantined bytes of an image or PDF for a reviewer's preview (sandboxed, never for researchers)."""
    with db.transaction(ctx.url) as s:
        req, f = submission.get_file(s, file_id)
        permissions.check_can_preview(ctx.person, req)
        sha, path = f.sha256, f.path
    mime = preview.RAW_TYPES.get(Path(path).suffix.lower())
    if mime is None:
        raise EnclaveError("this file type is shown inline on the request page only", reason="no_raw")
    return Response(store.read_head(ctx.settings.state_dir, sha, 64 << 20), media_type=mime, headers={
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; sandbox",
        "Content-Disposition": "inline"})


@router.get("/queue", response_class=HTMLResponse)
def queue(request: Request, status: str = "", project: str = "", page_no: int = Query(1, alias="page", ge=1),
          ctx: Ctx = Depends(caller)):
    st = None
    if status:
        try:
            st = RequestStatus(status).value
        except ValueError:
            raise EnclaveError(f"unknown status '{status}'", reason="bad_status") from None
    with db.transaction(ctx.url) as s:
        q = queries.queue(s, ctx.person, st, project or None, page_no)
    return page(request, ctx, "queue.html", q=q, status=status, project=project,
                statuses=[x.value for x in RequestStatus])


@router.get("/volumes", response_class=HTMLResponse)
def volumes_page(request: Request, day: str = "", ctx: Ctx = Depends(caller)):
    """Stewards' view of the host guard's record: each person's daily volume per project, outliers on top."""
    permissions.check_can_see_queue(ctx.person)
    try:
        when = dt.date.fromisoformat(day) if day else clock.today()
    except ValueError:
        raise EnclaveError(f"'{day}' is not a day; write YYYY-MM-DD", reason="bad_day") from None
    with db.transaction(ctx.url) as s:
        rows = volumes.daily_with_caps(s, ctx.settings.guard, when)
    median = statistics.median([r["bytes"] for r in rows]) if rows else 0
    for r in rows:
        r["outlier"] = median > 0 and r["bytes"] > OUTLIER_FACTOR * median
    return page(request, ctx, "volumes.html", rows=rows, day=when.isoformat(), median_mib=round(median / 2**20, 1),
                outlier_factor=OUTLIER_FACTOR, can_raise=ctx.person.role == Role.steward)


@router.post("/volumes/raise")
def raise_volume(user: str = Form(...), project: str = Form(...), mib: int = Form(...), reason: str = Form(...),
                 ctx: Ctx = Depends(caller)):
    permissions.check_can_see_queue(ctx.person)
    with db.transaction(ctx.url) as s:
        volumes.raise_cap(s, ctx.person.username, user, projects_svc.get(s, project), mib, reason)
    return RedirectResponse(f"{ctx.prefix}/volumes", status_code=303)


@router.get("/logout")
def logout(request: Request):
    resp = RedirectResponse("/hub/logout", status_code=302)
    request.app.state.gate.logout(resp)
    return resp
