"""Steward side: record a decision on one file, then let the workflow tables move the request.

One steward has at most one decision per file version (they may change it while the request is still
in review). A file is decided once `reviewers_required` different stewards have decided on it; when
every current file is decided the request is released, sent back for changes or rejected
(`workflow.request_outcome`). Everything happens in the caller's transaction with its audit events.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from enclave import audit, clock
from enclave.errors import Conflict

from egress_review import claims, imports, permissions, workflow
from egress_review.models import Review
from egress_review.permissions import Person
from egress_review.submission import get_file, lock_request_of_file
from egress_review.workflow import Decision, FileStatus, Owner, RequestStatus


def decide(session: Session, person: Person, file_id: int, decision: Decision, comment: str = "",
           override_reason: str = "", *, settings) -> Review:
    """Record `person`'s decision; when it releases an import (direction in), apply it with `settings`."""
    lock_request_of_file(session, file_id)
    req, f = get_file(session, file_id)
    permissions.check_can_review(person, req)
    claims.check_may_decide(person, req)
    permissions.check_decision(f, decision, comment, override_reason)
    mine = next((r for r in f.reviews if r.steward == person.username), None)
    if mine is None and len(f.reviews) >= req.reviewers_required:
        raise Conflict(f"'{f.path}' already has the {req.reviewers_required} decisions it needs",
                       reason="enough_reviews")
    if mine is None:
        mine = Review(steward=person.username, decision=decision)
        f.reviews.append(mine)
    mine.decision = decision
    mine.comment = comment.strip()
    mine.override_reason = override_reason.strip() if decision == Decision.approve else ""
    mine.decided_at = clock.now()
    session.flush()
    audit.record(session, person.username, "egress.review", workflow.target(req.id), {
        "file_id": f.id, "path": f.path, "version": f.version, "sha256": f.sha256,
        "decision": decision.value, "checks": f.check_status,
        "override": bool(mine.override_reason), "override_reason": mine.override_reason or None,
    })
    if req.status == RequestStatus.submitted:
        workflow.set_status(session, req, RequestStatus.under_review, person.username, acting_as=Owner.steward)
    f.status = workflow.file_outcome([r.decision for r in f.reviews], req.reviewers_required)
    session.flush()
    outcome = workflow.request_outcome(x.status for g in req.groups for x in g.files)
    if outcome is not None:
        workflow.set_status(session, req, outcome, person.username, acting_as=Owner.steward, files={
            x.path: x.status.value for g in req.groups for x in g.files if x.status != FileStatus.superseded
        })
        if outcome == RequestStatus.released and req.direction == imports.IN:
            imports.land(session, settings, req, person.username)
    return mine
