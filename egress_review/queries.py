"""Read-only views of the queue and of one request, shaped for the pages and the JSON API.

What a person may see is decided here with the pure rules in `permissions` (notably: a reviewer sees
other reviewers' decisions on a file only after deciding on it).
"""

from __future__ import annotations

import json

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from enclave import clock
from enclave.errors import EnclaveError

from egress_review import claims, permissions
from egress_review.models import Claim, FileGroup, ReleaseRequest, RequestFile, Review
from egress_review.permissions import Person
from egress_review.submission import get_request
from egress_review.workflow import STATUS_OWNERS, FileStatus, RequestStatus

PAGE = 50


def summary(req: ReleaseRequest, files: int | None = None) -> dict:
    return {
        "id": req.id, "project": req.project, "requester": req.requester, "status": req.status.value,
        "direction": req.direction,
        "waiting_on": STATUS_OWNERS[req.status].value,
        "created_at": req.created_at.isoformat() + "Z", "updated_at": req.updated_at.isoformat() + "Z",
        "reviewers_required": req.reviewers_required, "files": files,
    }


def queue(session: Session, person: Person, status: str | None = None, project: str | None = None,
          page: int = 1) -> dict:
    permissions.check_can_see_queue(person)
    stmt = select(ReleaseRequest)
    count = select(func.count(ReleaseRequest.id))
    if status:
        st = RequestStatus(status)
        stmt, count = stmt.where(ReleaseRequest.status == st), count.where(ReleaseRequest.status == st)
    if project:
        stmt, count = stmt.where(ReleaseRequest.project == project), count.where(ReleaseRequest.project == project)
    page = max(1, page)
    rows = list(session.execute(
        stmt.order_by(ReleaseRequest.updated_at.desc(), ReleaseRequest.id.desc())
        .limit(PAGE).offset((page - 1) * PAGE)
    ).scalars())
    counts = dict(session.execute(
        select(FileGroup.request_id, func.count(RequestFile.id))
        .join(RequestFile, RequestFile.group_id == FileGroup.id)
        .where(FileGroup.request_id.in_([r.id for r in rows]), RequestFile.status != FileStatus.superseded)
        .group_by(FileGroup.request_id)
    ).all()) if rows else {}
    total = session.execute(count).scalar_one()
    ids = [r.id for r in rows]
    decided: dict[int, set[str]] = {i: set() for i in ids}
    claimed: dict[int, list[str]] = {i: [] for i in ids}
    if ids:
        for rid, steward in session.execute(
            select(FileGroup.request_id, Review.steward).join(RequestFile, RequestFile.group_id == FileGroup.id)
            .join(Review, Review.file_id == RequestFile.id)
            .where(FileGroup.request_id.in_(ids), RequestFile.status != FileStatus.superseded)
        ).all():
            decided[rid].add(steward)
        for rid, steward in session.execute(
                select(Claim.request_id, Claim.steward).where(Claim.request_id.in_(ids)).order_by(Claim.id)).all():
            claimed[rid].append(steward)
    now = clock.now()
    return {
        "total": total, "page": page, "page_size": PAGE,
        "requests": [dict(summary(r, counts.get(r.id, 0)),
                          can_review=not permissions.is_part_of(person, r),
                          age_hours=round((now - r.created_at).total_seconds() / 3600, 1),
                          claimed_by=claimed[r.id], decided_by=sorted(decided[r.id])) for r in rows],
    }


def review_view(review, show_identity: bool = True) -> dict:
    return {
        "steward": review.steward if show_identity else None, "decision": review.decision.value,
        "comment": review.comment, "override_reason": review.override_reason,
        "decided_at": review.decided_at.isoformat() + "Z",
    }


def file_view(person: Person, req: ReleaseRequest, f: RequestFile) -> dict:
    reviews = list(f.reviews)
    mine = next((r for r in reviews if r.steward == person.username), None)
    see_all = permissions.can_see_other_decisions(person, req, reviews)
    return {
        "id": f.id, "path": f.path, "kind": f.kind, "version": f.version, "sha256": f.sha256, "size": f.size,
        "status": f.status.value, "checks": json.loads(f.verdict), "check_status": f.check_status,
        "decisions": len(reviews),
        "my_review": review_view(mine) if mine else None,
        "reviews": [review_view(r) for r in reviews] if see_all else None,
        "downloadable": req.requester == person.username and req.status == RequestStatus.released
        and f.status == FileStatus.approved and req.direction == "out",
    }


def request_view(session: Session, person: Person, request_id: int) -> dict:
    req = get_request(session, request_id)
    permissions.check_can_view_request(person, req)
    groups = []
    for g in req.groups:
        groups.append({
            "id": g.id, "name": g.name, "context": g.context, "controls": g.controls,
            "files": [file_view(person, req, f) for f in g.files if f.status != FileStatus.superseded],
            "history": [{"path": f.path, "version": f.version, "sha256": f.sha256}
                        for f in g.files if f.status == FileStatus.superseded],
        })
    reviewer_blocked = None
    if person.is_reviewer:
        try:
            permissions.check_can_review(person, req)
        except EnclaveError as exc:  # shown as the reason the decision form is missing
            reviewer_blocked = str(exc)
    if reviewer_blocked is None and person.is_reviewer:
        try:
            claims.check_may_decide(person, req)
        except EnclaveError as exc:  # shown as the reason the decision form is missing
            reviewer_blocked = str(exc)
    return dict(summary(req, sum(len(g["files"]) for g in groups)), groups=groups,
                can_review=person.is_reviewer and reviewer_blocked is None, review_blocked=reviewer_blocked,
                is_requester=person.username == req.requester,
                claimed_by=claims.claimers(req), claimed_by_me=person.username in claims.claimers(req))

