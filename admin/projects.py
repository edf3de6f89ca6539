"""Projects: list, create (dates, purpose, data folder), members, suspend/resume/close, the host guard's
bounds, and the datasets imported into each (names, sizes, risk summary; never a record)."""

from __future__ import annotations

import datetime as dt
import json

from fastapi import APIRouter, Depends, Form, Request
from sqlalchemy import func, or_, select

from enclave import access, db, projects, volumes
from enclave.errors import Invalid
from enclave.models import DEFAULT_MIN_CELL_COUNT, Account, Membership, Project, ProjectStatus, Role

from admin.web import PAGE_SIZE, Ctx, Said, admin, page
from ingest.models import Dataset

router = APIRouter()


def _date(value: str, what: str) -> dt.date | None:
    value = (value or "").strip()
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise Invalid(f"{what} '{value}' is not a date; write it as YYYY-MM-DD") from None


@router.get("/projects")
def listing(request: Request, q: str = "", status: str = "", page_no: int = 0, ctx: Ctx = Depends(admin)):
    page_no = max(0, page_no)
    where = []
    if q:
        like = f"%{q.strip().lower()}%"
        where.append(or_(Project.slug.like(like), func.lower(Project.title).like(like)))
    if status in {s.value for s in ProjectStatus}:
        where.append(Project.status == ProjectStatus(status))
    members = (select(Membership.project_id, func.count().label("n")).group_by(Membership.project_id).subquery())
    with db.transaction(ctx.url) as s:
        total = s.execute(select(func.count()).select_from(Project).where(*where)).scalar_one()
        rows = [{"slug": p.slug, "title": p.title, "status": p.status.value, "start": p.start_date,
                 "end": p.end_date, "members": n or 0}
                for p, n in s.execute(select(Project, members.c.n).outerjoin(members, members.c.project_id == Project.id)
                                      .where(*where).order_by(Project.slug).limit(PAGE_SIZE).offset(PAGE_SIZE * page_no))]
    return page(request, ctx, "admin_projects.html", rows=rows, total=total, q=q, status=status, page_no=page_no,
                pages=max(1, -(-total // PAGE_SIZE)), statuses=[s.value for s in ProjectStatus],
                default_min_cell=DEFAULT_MIN_CELL_COUNT)


@router.post("/projects")
def create(request: Request, slug: str = Form(...), data_dir: str = Form(...), title: str = Form(""),
           start: str = Form(""), end: str = Form(""), purpose: str = Form(""), sponsor: str = Form(""),
           approval: str = Form(""), min_cell_count: int = Form(DEFAULT_MIN_CELL_COUNT), ctx: Ctx = Depends(admin)):
    with db.transaction(ctx.url) as s:
        p = projects.create(s, ctx.actor, slug.strip(), data_dir.strip(), title=title.strip(),
                            start=_date(start, "start"), end=_date(end, "end"), min_cell_count=min_cell_count,
                            purpose=purpose, sponsor=sponsor, approval=approval)
        said = [f"created project '{p.slug}' over {p.data_dir}"]
    return page(request, ctx, "admin_done.html", said=said, back=f"{ctx.prefix}/projects/{slug.strip()}")


@router.get("/projects/{slug}")
def detail(request: Request, slug: str, ctx: Ctx = Depends(admin)):
    with db.transaction(ctx.url) as s:
        p = projects.get(s, slug)
        members = sorted(m.account.username for m in p.memberships)
        candidates = list(s.execute(select(Account.username).where(Account.role == Role.researcher)
                                    .order_by(Account.username).limit(2000)).scalars())
        datasets = [_dataset(d) for d in s.execute(select(Dataset).where(Dataset.project_id == p.id)
                                                   .order_by(Dataset.imported_at)).scalars()]
        b = volumes.bounds_for(p, ctx.settings.guard)
        sp = ctx.settings.spawner
        info = {"slug": p.slug, "title": p.title, "status": p.status.value, "start": p.start_date,
                "end": p.end_date, "data_dir": p.data_dir, "purpose": p.purpose, "sponsor": p.sponsor,
                "approval": p.approval, "min_cell_count": p.min_cell_count,
                "bounds": {"burst_mib": b.burst_bytes // volumes.MIB,
                           "sustained_kib_per_s": b.sustained_bytes_per_s // 1024,
                           "daily_mib": b.daily_bytes // volumes.MIB, "terminals": b.terminals},
                "mem_limit": p.mem_limit or f"{sp.mem_limit} (site)", "cpu_limit": p.cpu_limit or f"{sp.cpu_limit:g} (site)"}
    return page(request, ctx, "admin_project.html", p=info, members=members,
                candidates=[c for c in candidates if c not in members], datasets=datasets)


def _dataset(d: Dataset) -> dict:
    """What an admin may see of a dataset: its name, size, who brought it, and the risk *summary*."""
    m = json.loads(d.manifest or "{}")
    risk = m.get("risk") or {}
    return {"name": d.name, "rows": d.rows, "columns": d.columns, "imported_at": d.imported_at,
            "imported_by": d.imported_by, "version": d.version, "pseudonymised": m.get("pseudonymised") or [],
            "k": risk.get("k"), "unique_share": risk.get("unique_share"), "verdict": risk.get("verdict"),
            "accepted": d.risk_accepted}


@router.post("/projects/{slug}/members")
def add_member(request: Request, slug: str, username: str = Form(...), ctx: Ctx = Depends(admin)):
    with db.transaction(ctx.url) as s:
        projects.add_member(s, ctx.actor, slug, username.strip())
    return page(request, ctx, "admin_done.html", said=[f"added '{username.strip()}' to '{slug}'"],
                back=f"{ctx.prefix}/projects/{slug}")


@router.post("/projects/{slug}/members/{username}/remove")
def remove_member(request: Request, slug: str, username: str, ctx: Ctx = Depends(admin)):
    said = Said()
    access.remove_member(ctx.settings, ctx.actor, slug, username, out=said)
    return page(request, ctx, "admin_done.html", said=said.lines(), back=f"{ctx.prefix}/projects/{slug}")


@router.post("/projects/{slug}/status")
def set_status(request: Request, slug: str, status: str = Form(...), ctx: Ctx = Depends(admin)):
    if status not in {s.value for s in ProjectStatus}:
        raise Invalid(f"unknown status '{status}'")
    said = Said()
    access.set_project_status(ctx.settings, ctx.actor, slug, ProjectStatus(status), out=said)
    return page(request, ctx, "admin_done.html", said=said.lines(), back=f"{ctx.prefix}/projects/{slug}")


@router.post("/projects/{slug}/limits")
def limits(request: Request, slug: str, burst_mib: str = Form(""), sustained_kib_per_s: str = Form(""),
           daily_mib: str = Form(""), terminals: str = Form(""), mem_limit: str = Form(""), cpu_limit: str = Form(""),
           ctx: Ctx = Depends(admin)):
    container = {}
    if mem_limit.strip():
        container["mem_limit"] = projects.SITE if mem_limit.strip() == "site" else mem_limit.strip()
    if cpu_limit.strip():
        try:
            container["cpu_limit"] = projects.SITE if cpu_limit.strip() == "site" else float(cpu_limit)
        except ValueError:
            raise Invalid(f"'{cpu_limit}' is neither a number of CPUs nor 'site'") from None
    changes = {}
    for key, value in (("guard_burst_mib", burst_mib), ("guard_sustained_kib_per_s", sustained_kib_per_s),
                       ("guard_daily_mib", daily_mib)):
        value = value.strip()
        if value == "site":
            changes[key] = projects.SITE
        elif value:
            try:
                changes[key] = int(value)
            except ValueError:
                raise Invalid(f"'{value}' is neither a whole number nor 'site'") from None
    if terminals in ("on", "off", "site"):
        changes["terminals"] = {"on": True, "off": False, "site": projects.SITE}[terminals]
    if not changes and not container:
        raise Invalid("say what to change", reason="nothing_to_do")
    with db.transaction(ctx.url) as s:
        if changes:
            projects.set_guard_bounds(s, ctx.actor, slug, **changes)
        if container:
            projects.set_container_limits(s, ctx.actor, slug, **container)
    return page(request, ctx, "admin_done.html", said=[f"limits of '{slug}' changed; servers started from now on get them"],
                back=f"{ctx.prefix}/projects/{slug}")
