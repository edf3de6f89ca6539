"""People: list and search, add (the one-time enrolment link is shown once, never stored), disable,
re-enable, reset MFA, change role, set the notification address."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from sqlalchemy import func, or_, select

from enclave import access, accounts, db, notify
from enclave.errors import Invalid
from enclave.models import Account, AccountStatus, Membership, Project, Role

from admin.web import PAGE_SIZE, Ctx, Said, admin, page

router = APIRouter()


def _listing(session, q: str, role: str, status: str, page_no: int) -> tuple[list[dict], int]:
    where = []
    if q:
        like = f"%{q.strip().lower()}%"
        where.append(or_(Account.username.like(like), func.lower(func.coalesce(Account.email, "")).like(like)))
    if role in {r.value for r in Role}:
        where.append(Account.role == Role(role))
    if status in {s.value for s in AccountStatus}:
        where.append(Account.status == AccountStatus(status))
    total = session.execute(select(func.count()).select_from(Account).where(*where)).scalar_one()
    accts = list(session.execute(select(Account).where(*where).order_by(Account.username)
                                 .limit(PAGE_SIZE).offset(PAGE_SIZE * page_no)).scalars())
    ids = [a.id for a in accts]
    slugs: dict[int, list[str]] = {}
    if ids:
        for account_id, slug in session.execute(
                select(Membership.account_id, Project.slug).join(Project, Project.id == Membership.project_id)
                .where(Membership.account_id.in_(ids)).order_by(Project.slug)):
            slugs.setdefault(account_id, []).append(slug)
    rows = [{"name": a.username, "role": a.role.value, "status": a.status.value,
             "mfa": bool(a.totp_secret and a.enrolled_at), "locked": a.locked_until, "email": a.email or "",
             "notify": a.notify, "projects": slugs.get(a.id, [])} for a in accts]
    return rows, total


@router.get("/people")
def people(request: Request, q: str = "", role: str = "", status: str = "", page_no: int = 0,
           ctx: Ctx = Depends(admin)):
    page_no = max(0, page_no)
    with db.transaction(ctx.url) as s:
        rows, total = _listing(s, q, role, status, page_no)
    return page(request, ctx, "admin_people.html", rows=rows, total=total, q=q, role=role, status=status,
                page_no=page_no, pages=max(1, -(-total // PAGE_SIZE)), roles=[r.value for r in Role],
                statuses=[s.value for s in AccountStatus])


@router.post("/people")
def add(request: Request, username: str = Form(...), role: str = Form(...), email: str = Form(""),
        ctx: Ctx = Depends(admin)):
    s = ctx.settings
    with db.transaction(ctx.url) as session:
        account, token = accounts.add(session, ctx.actor, username.strip(), accounts.parse_role(role),
                                      s.auth.enrolment_valid_hours)
        if email.strip():
            notify.set_preferences(session, ctx.actor, account.username, email=email)
        name, role_value = account.username, account.role.value
    return page(request, ctx, "admin_link.html", name=name, role=role_value, what="created",
                link=accounts.enrolment_url(s, token), hours=s.auth.enrolment_valid_hours)


def _not_yourself(ctx: Ctx, name: str, what: str) -> None:
    """An admin does not lock themselves out from the page: another admin, or the command, does that."""
    if name == ctx.username:
        raise Invalid(f"you cannot {what} your own account here; ask another admin or use the `enclave` command",
                      reason="own_account")


@router.post("/people/{name}/reset-mfa")
def reset_mfa(request: Request, name: str, ctx: Ctx = Depends(admin)):
    _not_yourself(ctx, name, "reset the MFA of")
    said = Said()
    token = access.reset_mfa(ctx.settings, ctx.actor, name, out=said)
    return page(request, ctx, "admin_link.html", name=name, role="", what="reset", said=said.lines(),
                link=accounts.enrolment_url(ctx.settings, token), hours=ctx.settings.auth.enrolment_valid_hours)


@router.post("/people/{name}/disable")
def disable(request: Request, name: str, ctx: Ctx = Depends(admin)):
    _not_yourself(ctx, name, "disable")
    said = Said()
    access.disable_account(ctx.settings, ctx.actor, name, out=said)
    return page(request, ctx, "admin_done.html", said=said.lines(), back=f"{ctx.prefix}/people?q={name}")


@router.post("/people/{name}/enable")
def enable(request: Request, name: str, ctx: Ctx = Depends(admin)):
    with db.transaction(ctx.url) as session:
        account = accounts.enable(session, ctx.actor, name)
        said = [f"'{name}' is enabled again ({account.status.value})"]
        if account.status == AccountStatus.pending:
            said.append("they never finished enrolling: reset their MFA to give them a new link")
    return page(request, ctx, "admin_done.html", said=said, back=f"{ctx.prefix}/people?q={name}")


@router.post("/people/{name}/role")
def role(request: Request, name: str, role: str = Form(...), ctx: Ctx = Depends(admin)):
    _not_yourself(ctx, name, "change the role of")
    said = Said()
    access.change_role(ctx.settings, ctx.actor, name, accounts.parse_role(role), out=said)
    return page(request, ctx, "admin_done.html", said=said.lines(), back=f"{ctx.prefix}/people?q={name}")


@router.post("/people/{name}/email")
def email(request: Request, name: str, email: str = Form(""), ctx: Ctx = Depends(admin)):
    with db.transaction(ctx.url) as session:
        a = notify.set_preferences(session, ctx.actor, name, email=email)
        said = [f"'{name}': mail to {a.email}" if a.email else f"'{name}': no mail (no address)"]
    return page(request, ctx, "admin_done.html", said=said, back=f"{ctx.prefix}/people?q={name}")
