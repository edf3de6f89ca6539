"""The audit log: search by person, project and action (newest first, a page at a time by sequence
number, so the millionth event is as quick as the first), verify the chain, export what was found."""

from __future__ import annotations

import json

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import or_, select

from enclave import audit, db
from enclave.models import AuditEvent

from admin.web import PAGE_SIZE, Ctx, admin, page

router = APIRouter()


def _filters(person: str, project: str, action: str) -> list:
    where = []
    person, project, action = person.strip(), project.strip(), action.strip()
    if person:
        where.append(or_(AuditEvent.actor == person, AuditEvent.target == person))
    if project:
        where.append(AuditEvent.target == project)
    if action:
        where.append(AuditEvent.action.like(action.replace("%", "").replace("_", r"\_") + "%", escape="\\"))
    return where


def _row(ev: AuditEvent) -> dict:
    return {"seq": ev.seq, "ts": ev.ts.isoformat(timespec="seconds"), "actor": ev.actor, "action": ev.action,
            "target": ev.target, "detail": ev.detail}


@router.get("/audit")
def search(request: Request, person: str = "", project: str = "", action: str = "", before: int = 0,
           ctx: Ctx = Depends(admin)):
    where = _filters(person, project, action)
    if before > 0:
        where.append(AuditEvent.seq < before)
    with db.transaction(ctx.url) as s:
        rows = [_row(e) for e in s.execute(select(AuditEvent).where(*where).order_by(AuditEvent.seq.desc())
                                           .limit(PAGE_SIZE)).scalars()]
        head = audit.head_event(s)
    return page(request, ctx, "admin_audit.html", rows=rows, person=person, project=project, action=action,
                older=rows[-1]["seq"] if len(rows) == PAGE_SIZE else 0, head=head.seq if head else 0)


@router.get("/audit/verify")
def verify(request: Request, ctx: Ctx = Depends(admin)):
    with db.transaction(ctx.url) as s:
        verdict = audit.verify(s)
    return page(request, ctx, "admin_done.html", said=[str(verdict)], ok=verdict.ok, back=f"{ctx.prefix}/audit")


@router.get("/audit/export")
def export(person: str = "", project: str = "", action: str = "", ctx: Ctx = Depends(admin)):
    """What the search found, oldest first, as JSON lines (the format of `enclave audit export`)."""
    where = _filters(person, project, action)

    def lines():
        with db.transaction(ctx.url) as s:
            for ev in s.execute(select(AuditEvent).where(*where).order_by(AuditEvent.seq)
                                .execution_options(yield_per=2000)).scalars():
                yield json.dumps({**_row(ev), "ts": ev.ts.isoformat(timespec="microseconds") + "Z",
                                  "detail": json.loads(ev.detail), "prev_hash": ev.prev_hash, "hash": ev.hash},
                                 sort_keys=True) + "\n"
    with db.transaction(ctx.url) as s:
        audit.record(s, ctx.actor, "audit.export", "", {"person": person, "project": project, "action": action})
    return StreamingResponse(lines(), media_type="application/x-ndjson",
                             headers={"Content-Disposition": 'attachment; filename="audit.jsonl"'})
