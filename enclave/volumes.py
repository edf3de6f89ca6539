"""What notebook servers send toward people, per person, project and day: the host guard's bounds for a
project, the record of volumes, the daily cap rule and a steward's raise of it.

The guard (hub/guard/) counts bytes in the host's kernel and calls `record`; spawns and the guard ask
`check_within_cap`; stewards see `daily` and call `raise_cap`. Days are UTC days.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from enclave import audit, clock
from enclave.errors import Invalid, NotFound, PermissionDenied
from enclave.models import Account, DailyVolume, Project, Role

MIB = 2**20
MAX_RAISE_MIB = 100 * 1024  # a raise is for a day of work, not a way round the guard


@dataclass(frozen=True)
class Bounds:
    """The guard's bounds for one project: the site's [guard] values unless the project sets its own."""

    burst_bytes: int
    sustained_bytes_per_s: int
    daily_bytes: int
    terminals: bool


def bounds_for(project: Project, guard) -> Bounds:
    def pick(own, site):
        return site if own is None else own

    return Bounds(
        burst_bytes=pick(project.guard_burst_mib, guard.burst_mib) * MIB,
        sustained_bytes_per_s=pick(project.guard_sustained_kib_per_s, guard.sustained_kib_per_s) * 1024,
        daily_bytes=pick(project.guard_daily_mib, guard.daily_mib) * MIB,
        terminals=pick(project.terminals, guard.terminals),
    )


def _row(session: Session, day: dt.date, username: str, project: str, create: bool = False) -> DailyVolume | None:
    row = session.execute(select(DailyVolume).where(
        DailyVolume.day == day, DailyVolume.username == username, DailyVolume.project == project)
    ).scalar_one_or_none()
    if row is None and create:
        row = DailyVolume(day=day, username=username, project=project, bytes=0, capped=False)
        session.add(row)
        session.flush()
    return row


def record(session: Session, day: dt.date, username: str, project: str, nbytes: int) -> int:
    """Add `nbytes` to the person's volume in the project on `day`; returns the day's total."""
    row = _row(session, day, username, project, create=True)
    row.bytes += max(0, int(nbytes))
    return row.bytes


def used(session: Session, day: dt.date, username: str, project: str) -> int:
    row = _row(session, day, username, project)
    return row.bytes if row else 0


def cap(session: Session, day: dt.date, username: str, project: Project, guard) -> int:
    """The day's cap in bytes: a steward's raise for that day, else the project's or the site's."""
    row = _row(session, day, username, project.slug)
    if row is not None and row.raised_cap_mib is not None:
        return row.raised_cap_mib * MIB
    return bounds_for(project, guard).daily_bytes


def remaining(session: Session, day: dt.date, username: str, project: Project, guard) -> int:
    return max(0, cap(session, day, username, project, guard) - used(session, day, username, project.slug))


def mark_capped(session: Session, day: dt.date, username: str, project: str) -> None:
    """The guard stopped the person's server at the cap (the kernel's quota said so): no more today."""
    _row(session, day, username, project, create=True).capped = True


def check_within_cap(session: Session, day: dt.date, username: str, project: Project, guard) -> None:
    """Refuse a start (and tell the person how to ask for more) once today's volume reached the cap."""
    limit = cap(session, day, username, project, guard)
    row = _row(session, day, username, project.slug)
    if row is not None and (row.capped or row.bytes >= limit):
        raise PermissionDenied(
            f"Your notebook in project '{project.slug}' has sent today's allowance of {limit // MIB} MiB "
            "to your browser, so it was stopped and cannot start again today. Results leave the enclave "
            "through an output request; if your work needs more today, ask a data steward to raise "
            "your allowance for today.", reason="egress_daily_cap")


def raise_cap(session: Session, actor: str, username: str, project: Project, mib: int, reason: str,
              day: dt.date | None = None) -> DailyVolume:
    """A steward raises one person's cap in one project for one day (today by default); audited."""
    who = session.execute(select(Account).where(Account.username == actor)).scalar_one_or_none()
    if who is not None and who.role != Role.steward:
        raise PermissionDenied("only a data steward can raise a person's daily allowance", reason="not_steward")
    if not reason.strip():
        raise Invalid("say why this person needs more today (--reason)", reason="reason_required")
    if not 1 <= mib <= MAX_RAISE_MIB:
        raise Invalid(f"the raised allowance must be between 1 and {MAX_RAISE_MIB} MiB")
    if session.execute(select(Account.id).where(Account.username == username)).first() is None:
        raise NotFound(f"no user '{username}' (see `enclave user list`)")
    day = day or clock.today()
    row = _row(session, day, username, project.slug, create=True)
    old = row.raised_cap_mib
    row.raised_cap_mib = mib
    row.capped = row.bytes >= mib * MIB
    audit.record(session, actor, "notebook.egress_cap_raised", project.slug, {
        "user": username, "day": day.isoformat(), "mib": mib, "previous_mib": old, "reason": reason.strip()})
    return row


def daily_with_caps(session: Session, guard, day: dt.date) -> list[dict]:
    """One day's volumes per person and project, largest first, each with its cap (the stewards' page and
    `enclave volume list` show this)."""
    found = daily(session, day)
    projects = {p.slug: p for p in session.execute(
        select(Project).where(Project.slug.in_(sorted({v.project for v in found})))).scalars()}
    rows = []
    for v in found:
        project = projects.get(v.project)
        limit = (v.raised_cap_mib * MIB if v.raised_cap_mib is not None
                 else bounds_for(project, guard).daily_bytes if project else 0)
        rows.append({"project": v.project, "user": v.username, "bytes": v.bytes, "mib": round(v.bytes / MIB, 1),
                     "cap_mib": limit // MIB, "share": round(100 * v.bytes / limit) if limit else 0,
                     "raised": v.raised_cap_mib is not None, "capped": v.capped})
    return rows


def daily(session: Session, day: dt.date) -> list[DailyVolume]:
    """Every person's volume per project on `day`, largest first (the outliers on top)."""
    return list(session.execute(
        select(DailyVolume).where(DailyVolume.day == day).order_by(DailyVolume.bytes.desc())).scalars())
