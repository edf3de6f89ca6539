"""Project lifecycle and membership: the only code that changes projects, each change audited."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from enclave import audit, clock, units
from enclave.errors import Conflict, Invalid, NotFound
from enclave.models import DEFAULT_MIN_CELL_COUNT, Account, AccountStatus, Membership, Project, ProjectStatus, Role

# A project slug is also the JupyterHub named-server name: JupyterHub 6 allows 1-30 chars of
# [a-z0-9-] starting with a letter.
SLUG_RE = re.compile(r"^[a-z][a-z0-9-]{0,29}$")


def get(session: Session, slug: str) -> Project:
    project = session.execute(select(Project).where(Project.slug == slug)).scalar_one_or_none()
    if project is None:
        raise NotFound(f"no project '{slug}' (see `enclave project list`)")
    return project


def create(
    session: Session,
    actor: str,
    slug: str,
    data_dir: str,
    *,
    title: str = "",
    start: dt.date | None = None,
    end: dt.date | None = None,
    min_cell_count: int = DEFAULT_MIN_CELL_COUNT,
    purpose: str = "",
    sponsor: str = "",
    approval: str = "",
) -> Project:
    """A new active project; `purpose`, `sponsor` and `approval` (legal basis or approval reference) are
    what the public transparency register says of it."""
    if not SLUG_RE.match(slug):
        raise Invalid(
            f"project name '{slug}' is not allowed: use 1-30 lowercase letters, digits or '-', starting with a letter"
        )
    data = Path(data_dir).expanduser()
    if not data.is_dir():
        raise Invalid(f"data folder {data} does not exist or is not a folder")
    data = data.resolve()
    start = start or clock.today()
    if end is not None and end < start:
        raise Invalid(f"end date {end} is before start date {start}")
    if min_cell_count < 1:
        raise Invalid("--min-cell-count must be at least 1")
    if session.execute(select(Project.id).where(Project.slug == slug)).first():
        raise Conflict(f"project '{slug}' already exists")
    project = Project(
        slug=slug, title=title or slug, data_dir=str(data), status=ProjectStatus.active,
        start_date=start, end_date=end, min_cell_count=min_cell_count,
        purpose=purpose.strip(), sponsor=sponsor.strip(), approval=approval.strip(),
    )
    session.add(project)
    session.flush()
    audit.record(session, actor, "project.create", slug, {
        "data_dir": str(data), "start": str(start), "end": str(end) if end else None,
        "min_cell_count": min_cell_count, "purpose": project.purpose, "sponsor": project.sponsor,
        "approval": project.approval,
    })
    return project


def list_all(session: Session) -> list[Project]:
    return list(session.execute(select(Project).order_by(Project.slug)).scalars())


def set_status(session: Session, actor: str, slug: str, status: ProjectStatus) -> Project:
    project = get(session, slug)
    if project.status == ProjectStatus.closed:
        raise Invalid(f"project '{slug}' is closed; a closed project cannot change status")
    if project.status == status:
        raise Invalid(f"project '{slug}' is already {status.value}")
    old = project.status
    project.status = status
    audit.record(session, actor, f"project.{status.value}", slug, {"from": old.value})
    return project


GUARD_BOUNDS = ("guard_burst_mib", "guard_sustained_kib_per_s", "guard_daily_mib", "terminals")
SITE = object()  # "use the site's [guard] value again"


def set_guard_bounds(session: Session, actor: str, slug: str, **changes) -> Project:
    """Set a project's own host-guard bounds (GUARD_BOUNDS keys; SITE: back to the site's); audited.
    Servers started from now on get them."""
    project = get(session, slug)
    if project.status == ProjectStatus.closed:
        raise Invalid(f"project '{slug}' is closed; its bounds cannot change")
    done = {}
    for key, value in changes.items():
        if key not in GUARD_BOUNDS:
            raise Invalid(f"unknown guard bound '{key}'")
        value = None if value is SITE else value
        if key != "terminals" and value is not None and value < 1:
            raise Invalid(f"{key.removeprefix('guard_')} must be at least 1")
        setattr(project, key, value)
        done[key] = value
    if done:
        audit.record(session, actor, "project.guard_bounds", slug, done)
    return project


MIN_MEM_BYTES = 256 * 1024**2


def set_container_limits(session: Session, actor: str, slug: str, *, mem_limit=None, cpu_limit=None) -> Project:
    """Set a project's own memory ('8G') and CPU (2.0) limits for its notebook containers (SITE: the
    [spawner] value again; None: unchanged); audited. Servers started from now on get them."""
    project = get(session, slug)
    if project.status == ProjectStatus.closed:
        raise Invalid(f"project '{slug}' is closed; its limits cannot change")
    done = {}
    if mem_limit is not None:
        if mem_limit is SITE:
            project.mem_limit = None
        else:
            try:
                size = units.parse_bytes(mem_limit)
            except ValueError as exc:
                raise Invalid(str(exc)) from None
            if size < MIN_MEM_BYTES:
                raise Invalid(f"memory limit {mem_limit} is below 256 MiB; a notebook server does not start in less")
            project.mem_limit = str(mem_limit).strip()
        done["mem_limit"] = project.mem_limit
    if cpu_limit is not None:
        if cpu_limit is not SITE and not (0 < float(cpu_limit) <= 256):
            raise Invalid("the CPU limit is a number of CPUs above 0, e.g. 2 or 0.5")
        project.cpu_limit = None if cpu_limit is SITE else float(cpu_limit)
        done["cpu_limit"] = project.cpu_limit
    if done:
        audit.record(session, actor, "project.container_limits", slug, done)
    return project


def add_member(session: Session, actor: str, slug: str, username: str) -> Membership:
    project = get(session, slug)
    if project.status == ProjectStatus.closed:
        raise Invalid(f"project '{slug}' is closed; members cannot be added")
    account = session.execute(select(Account).where(Account.username == username)).scalar_one_or_none()
    if account is None:
        raise NotFound(f"no user '{username}' (see `enclave user list`)")
    if account.role != Role.researcher:
        raise Invalid(
            f"'{username}' is a {account.role.value}; only researchers are project members "
            "(stewards review outputs of every project)"
        )
    if account.status == AccountStatus.disabled:
        raise Invalid(f"user '{username}' is disabled")
    if any(m.account_id == account.id for m in project.memberships):
        raise Conflict(f"'{username}' is already a member of '{slug}'")
    m = Membership(project=project, account=account)
    session.add(m)
    session.flush()
    audit.record(session, actor, "project.add_member", slug, {"user": username})
    return m


def remove_member(session: Session, actor: str, slug: str, username: str) -> None:
    project = get(session, slug)
    for m in project.memberships:
        if m.account.username == username:
            session.delete(m)
            session.flush()
            audit.record(session, actor, "project.remove_member", slug, {"user": username})
            return
    raise NotFound(f"'{username}' is not a member of '{slug}'")


def projects_of(session: Session, username: str) -> list[Project]:
    """The projects a user belongs to, whatever their status."""
    stmt = (
        select(Project)
        .join(Membership, Membership.project_id == Project.id)
        .join(Account, Account.id == Membership.account_id)
        .where(Account.username == username)
        .order_by(Project.slug)
    )
    return list(session.execute(stmt).scalars())
