"""What the API and the pages routers share: who is calling (one dependency), the app's settings, and
the two answers both give the same way (a workspace listing, a file download)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fastapi import Request
from fastapi.responses import HTMLResponse, StreamingResponse
from fastapi.templating import Jinja2Templates

from enclave import db
from enclave import projects as projects_svc
from enclave.errors import Invalid

from egress_review import downloads, permissions, workspace
from egress_review.auth import Identity, NeedsLogin, check_csrf
from egress_review.people import person_for
from egress_review.permissions import Person

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).resolve().parent / "templates"))


@dataclass(frozen=True)
class Ctx:
    """The caller of one request: identity (with its CSRF token), enclave person, and the app's settings."""

    ident: Identity
    person: Person
    settings: object
    prefix: str

    @property
    def url(self) -> str:
        return self.settings.database_url


async def caller(request: Request) -> Ctx:
    """FastAPI dependency of every route that needs a person: identify, check CSRF, load the person."""
    state = request.app.state
    ident = await state.gate.identify(request)
    if ident is None:
        raise NeedsLogin("login required")
    check_upload_size(request, state.settings)
    await check_csrf(request, ident)
    with db.transaction(state.settings.database_url) as s:
        person = person_for(s, ident.name)
    return Ctx(ident, person, state.settings, state.prefix)


def check_upload_size(request: Request, settings) -> None:
    """Refuse an upload bigger than a whole code import may be before a byte of it is parsed (the form
    parser would otherwise spool any size to disk)."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        return
    cfg = settings.imports
    limit = cfg.max_files * cfg.max_file_kib * 1024 + (1 << 20)
    try:
        length = int(request.headers.get("content-length", ""))
    except ValueError:
        raise Invalid("an upload must say its length (Content-Length)", reason="length_required") from None
    if length > limit:
        raise Invalid(f"the upload is {length} bytes; code imports are at most {cfg.max_files} files of "
                      f"{cfg.max_file_kib} KiB", reason="too_large")


async def uploads(request: Request, field: str = "files") -> list[tuple[str, bytes]]:
    """(file name, bytes) of every file of a multipart form field (size already bounded)."""
    form = await request.form()
    out = []
    for item in form.getlist(field):
        if hasattr(item, "read"):
            out.append((item.filename or "", await item.read()))
    return out


def listing(ctx: Ctx, project: str, path: str) -> dict:
    with db.transaction(ctx.url) as s:
        permissions.check_can_browse(ctx.person, projects_svc.get(s, project))
    root = workspace.root_for(ctx.settings.state_dir, project, ctx.person.username)
    entries = workspace.listing(root, path)
    return {"project": project, "path": path, "entries": [e.__dict__ for e in entries]}


def download(ctx: Ctx, file_id: int) -> StreamingResponse:
    name, data, size, sha = downloads.fetch(ctx.url, ctx.settings.state_dir, ctx.person.username, file_id)

    def chunks():
        with data:
            while chunk := data.read(1 << 20):
                yield chunk

    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in name) or "file"
    return StreamingResponse(chunks(), media_type="application/octet-stream", headers={
        "Content-Disposition": f'attachment; filename="{safe}"', "Content-Length": str(size),
        "X-Content-SHA256": sha})


def page(request: Request, ctx: Ctx, name: str, **data) -> HTMLResponse:
    return TEMPLATES.TemplateResponse(request, name, {
        "prefix": ctx.prefix, "me": ctx.person, "csrf": ctx.ident.csrf, **data})
