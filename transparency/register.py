"""What the register says, read from the database as it is now, and the comparison of two copies.

**Audit anchors.** The register names the head of the audit chain (sequence number, hash, date) and
the hash of earlier events: every `CHECKPOINT_EVERY`-th event and the head of every earlier export
(`enclave transparency export` records each one as `transparency.export`). Each event's hash covers all
before it, so a history rewritten at event m changes every anchor from m on: comparing an older copy's
anchors (and head) with a newer copy's shows it. Only a rewrite after the older copy's last anchor the
newer one also holds goes unseen, and the newer export always holds the older *export*'s head.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from pathlib import PurePosixPath

from sqlalchemy import select

from enclave import audit, clock, projects
from enclave.errors import Invalid
from enclave.models import DEFAULT_MIN_CELL_COUNT, AuditEvent
from enclave.settings import Settings

from egress_review.models import FileGroup, ReleaseRequest, RequestFile
from egress_review.workflow import FileStatus, RequestStatus
from ingest import optout
from ingest.models import Dataset

FORMAT = "enclave-transparency/1"
CHECKPOINT_EVERY = 1000
EXPORT_ACTION = "transparency.export"


def _day(value: dt.date | dt.datetime | None) -> str | None:
    return value.strftime("%Y-%m-%d") if value else None


def _kind(path: str) -> str:
    """A released file's kind from its name's ending only (the name itself is never published)."""
    suffix = PurePosixPath(path).suffix.lower().lstrip(".")
    return suffix if suffix.isalnum() and len(suffix) <= 8 else "other"


def build(session, settings: Settings) -> dict:
    """The register as of now (one read transaction)."""
    t = settings.transparency
    every = projects.list_all(session)
    names: dict[int, list[str]] = {}
    if t.datasets:
        for project_id, name in session.execute(select(Dataset.project_id, Dataset.name).order_by(Dataset.name)):
            names.setdefault(project_id, []).append(name)
    register: dict = {
        "format": FORMAT, "site": t.site_name, "generated_at": clock.now().isoformat(timespec="seconds") + "Z",
        "projects": [{
            "project": p.slug, "title": p.title, "purpose": p.purpose, "sponsor": p.sponsor,
            "approval": p.approval, "start": _day(p.start_date), "end": _day(p.end_date), "status": p.status.value,
            **({"datasets": names.get(p.id, [])} if t.datasets else {}),
        } for p in every],
    }
    if t.releases:
        register["releases"] = releases(session)
    if t.optout_totals:
        totals = optout.totals(session)
        thresholds = {p.slug: p.min_cell_count for p in every}
        register["optout"] = {
            "objections": optout.shown(totals.objections, DEFAULT_MIN_CELL_COUNT),
            "records_removed": {slug: optout.shown(n, thresholds.get(slug, DEFAULT_MIN_CELL_COUNT))
                                for slug, n in sorted(totals.removed_by_project.items())},
        }
    register["audit"] = anchors(session)
    return register


def releases(session) -> list[dict]:
    """Each release of outputs: day, project, how many files of which kinds (nothing else)."""
    rows = session.execute(
        select(ReleaseRequest.id, ReleaseRequest.project, ReleaseRequest.updated_at, RequestFile.path)
        .join(FileGroup, FileGroup.request_id == ReleaseRequest.id)
        .join(RequestFile, RequestFile.group_id == FileGroup.id)
        .where(ReleaseRequest.status == RequestStatus.released, ReleaseRequest.direction == "out",
               RequestFile.status == FileStatus.approved)
        .order_by(ReleaseRequest.updated_at, ReleaseRequest.id))
    out: dict[int, dict] = {}
    for rid, project, when, path in rows:
        r = out.setdefault(rid, {"date": _day(when), "project": project, "files": 0, "kinds": Counter()})
        r["files"] += 1
        r["kinds"][_kind(path)] += 1
    return [{**r, "kinds": dict(sorted(r["kinds"].items()))} for r in out.values()]


def anchors(session) -> dict:
    head = audit.head_event(session)
    if head is None:
        return {"head": None, "anchors": []}
    exported = [json.loads(d).get("head_seq") for d in session.execute(
        select(AuditEvent.detail).where(AuditEvent.action == EXPORT_ACTION)).scalars()]
    seqs = set(range(CHECKPOINT_EVERY, head.seq + 1, CHECKPOINT_EVERY)) | {s for s in exported if isinstance(s, int)}
    hashes = audit.hashes_at(session, sorted(seqs))
    return {
        "head": {"seq": head.seq, "hash": head.hash, "at": head.ts.isoformat(timespec="seconds") + "Z"},
        "anchors": [{"seq": s, "hash": hashes[s]} for s in sorted(hashes)],
    }


def compare(older: dict, newer: dict) -> list[str]:
    """What the newer copy says of the older copy's history: lines that each begin with 'ok' or
    'REWRITTEN' (or 'cannot tell'). Raises Invalid when the two are not of one enclave's timeline."""
    a, b = older.get("audit") or {}, newer.get("audit") or {}
    if not a.get("head"):
        return ["ok: the older copy has an empty audit log"]
    if not b.get("head"):
        return ["REWRITTEN: the newer copy has no audit log at all"]
    ha, hb = a["head"], b["head"]
    if hb["seq"] < ha["seq"]:
        return [f"REWRITTEN: the newer copy's log ends at event {hb['seq']}, before the older's head {ha['seq']}"]
    mine = {x["seq"]: x["hash"] for x in a.get("anchors", [])} | {ha["seq"]: ha["hash"]}
    theirs = {x["seq"]: x["hash"] for x in b.get("anchors", [])} | {hb["seq"]: hb["hash"]}
    shared = sorted(set(mine) & set(theirs))
    bad = [s for s in shared if mine[s] != theirs[s]]
    if bad:
        return [f"REWRITTEN: event {bad[0]} has another hash now; history up to it was changed"]
    if ha["seq"] in theirs:
        return [f"ok: the newer copy continues the older one (its head, event {ha['seq']}, is unchanged)"]
    last = shared[-1] if shared else 0
    return [f"ok: events up to {last} are unchanged" if last else "ok: no anchor in common",
            f"cannot tell: events {last + 1}..{ha['seq']} (after the last shared anchor) are not covered"]


def check_timeline(older: dict, newer: dict) -> None:
    for r in (older, newer):
        if r.get("format") != FORMAT:
            raise Invalid(f"not a transparency register of this format ({r.get('format')!r})")
    if (older.get("generated_at") or "") > (newer.get("generated_at") or ""):
        raise Invalid("the first file is newer than the second; give the older copy first")
