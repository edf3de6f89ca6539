"""The review workflow as data: one table of transitions `(from, to) -> (actor, audit event)`, from which
the valid moves, the actors and the events derive, plus who holds a request in each status.
`set_status` is the one path that changes a request's status, and it enforces the table: the move must
be in it, and made by its actor.

There is no "draft": a request is created already submitted, in one transaction, with its files
snapshotted, so nothing half-described ever reaches the queue. The steward side moves a request out of
review by deciding on files; `request_outcome` says where the decisions lead.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from enclave import audit, clock
from enclave.errors import Conflict, PermissionDenied

from egress_review import notices

if TYPE_CHECKING:  # pragma: no cover
    from sqlalchemy.orm import Session

    from egress_review.models import ReleaseRequest


class RequestStatus(str, enum.Enum):
    submitted = "submitted"  # waiting for stewards
    under_review = "under_review"  # at least one steward decided something
    changes_requested = "changes_requested"  # back with the researcher for new versions
    released = "released"  # every file approved by enough stewards: the requester may download
    rejected = "rejected"  # refused for good
    withdrawn = "withdrawn"  # the researcher took it back


class Owner(str, enum.Enum):
    """Whose move it is."""

    steward = "steward"
    researcher = "researcher"
    nobody = "nobody"  # final


class FileStatus(str, enum.Enum):
    pending = "pending"  # fewer decisions than the request needs
    approved = "approved"
    changes_requested = "changes_requested"
    rejected = "rejected"
    superseded = "superseded"  # a newer version of this file replaced it


class Decision(str, enum.Enum):
    approve = "approve"
    request_changes = "request_changes"
    reject = "reject"


S = RequestStatus


@dataclass(frozen=True)
class Transition:
    actor: Owner  # who makes this move
    event: str  # the audit action written when it happens


# THE table. Every other table of moves below derives from it.
TRANSITIONS: dict[tuple[RequestStatus, RequestStatus], Transition] = {
    (S.submitted, S.under_review): Transition(Owner.steward, "egress.review_started"),
    (S.submitted, S.withdrawn): Transition(Owner.researcher, "egress.withdraw"),
    (S.under_review, S.changes_requested): Transition(Owner.steward, "egress.changes_requested"),
    (S.under_review, S.released): Transition(Owner.steward, "egress.release"),
    (S.under_review, S.rejected): Transition(Owner.steward, "egress.reject"),
    (S.under_review, S.withdrawn): Transition(Owner.researcher, "egress.withdraw"),
    (S.changes_requested, S.submitted): Transition(Owner.researcher, "egress.submit"),
    (S.changes_requested, S.withdrawn): Transition(Owner.researcher, "egress.withdraw"),
}
# A new request enters `submitted` from nothing, made by its researcher.
CREATION = Transition(Owner.researcher, "egress.submit")

# from -> allowed next statuses (final statuses map to the empty set)
VALID_TRANSITIONS: dict[RequestStatus, frozenset[RequestStatus]] = {
    s: frozenset(b for (a, b) in TRANSITIONS if a == s) for s in RequestStatus
}
# who causes each transition
TRANSITION_ACTORS: dict[tuple[RequestStatus, RequestStatus], Owner] = {k: t.actor for k, t in TRANSITIONS.items()}

STATUS_OWNERS: dict[RequestStatus, Owner] = {
    S.submitted: Owner.steward,
    S.under_review: Owner.steward,
    S.changes_requested: Owner.researcher,
    S.released: Owner.nobody,
    S.rejected: Owner.nobody,
    S.withdrawn: Owner.nobody,
}

# audit action written when a request ENTERS each status (creation enters `submitted` too); the table
# gives every way into a status the same event, so this is well defined (tests/unit/egress/test_workflow.py)
STATUS_EVENTS: dict[RequestStatus, str] = {
    S.submitted: CREATION.event, **{b: t.event for (_, b), t in TRANSITIONS.items()},
}

FINAL = frozenset(s for s, nxt in VALID_TRANSITIONS.items() if not nxt)
OPEN = frozenset(RequestStatus) - FINAL


def target(request_id: int) -> str:
    return f"egress-request:{request_id}"


def moves(status: RequestStatus, actor: Owner) -> frozenset[RequestStatus]:
    """Where `actor` may move a request that is in `status` (permissions ask this, not status lists)."""
    return frozenset(b for (a, b), t in TRANSITIONS.items() if a == status and t.actor == actor)


def set_status(session: Session, request: ReleaseRequest, new: RequestStatus, actor: str, *, acting_as: Owner,
               **detail) -> None:
    """Move `request` to `new` and write the transition's audit event, in the caller's transaction.
    Refused unless the move is in TRANSITIONS and `acting_as` is its actor."""
    old = request.status
    move = TRANSITIONS.get((old, new))
    if move is None:
        raise Conflict(
            f"request {request.id} is {old.value.replace('_', ' ')} and cannot become "
            f"{new.value.replace('_', ' ')}; reload the page to see its current state",
            reason="invalid_transition",
        )
    if move.actor != acting_as:
        raise PermissionDenied(
            f"only the {move.actor.value} can move request {request.id} from {old.value.replace('_', ' ')} "
            f"to {new.value.replace('_', ' ')}", reason="wrong_actor")
    request.status = new
    request.updated_at = clock.now()
    session.flush()
    audit.record(session, actor, move.event, target(request.id),
                 {"from": old.value, "to": new.value, "project": request.project, "direction": request.direction,
                  **detail})
    notices.status_changed(session, request)


def enter_initial(session: Session, request: ReleaseRequest, actor: str, **detail) -> None:
    """A new request starts submitted; its creation is audited as the submit event."""
    request.status = S.submitted
    request.updated_at = clock.now()
    session.flush()
    audit.record(session, actor, CREATION.event, target(request.id),
                 {"from": None, "to": S.submitted.value, "project": request.project, "direction": request.direction,
                  **detail})
    notices.status_changed(session, request)


def file_outcome(decisions: Iterable[Decision], required: int) -> FileStatus:
    """A file is decided once `required` different stewards have decided on it.

    Unanimous approval approves it; any rejection rejects it; otherwise changes are requested.
    """
    decisions = list(decisions)
    if len(decisions) < required:
        return FileStatus.pending
    if all(d == Decision.approve for d in decisions):
        return FileStatus.approved
    if any(d == Decision.reject for d in decisions):
        return FileStatus.rejected
    return FileStatus.changes_requested


def request_outcome(file_statuses: Iterable[FileStatus]) -> RequestStatus | None:
    """Where a request under review goes once every current file is decided (None: stays in review)."""
    current = [s for s in file_statuses if s != FileStatus.superseded]
    if not current or any(s == FileStatus.pending for s in current):
        return None
    if any(s == FileStatus.changes_requested for s in current):
        return S.changes_requested  # the researcher can still fix things; rejected files stay rejected
    if any(s == FileStatus.approved for s in current):
        # Partial release: the approved files leave, the rejected ones never do (downloads check
        # each file's own status), so one disclosive file does not hold back a safe table.
        return S.released
    return S.rejected


def mermaid() -> str:
    """State diagram (mermaid) generated from the tables above, for docs/egress.md."""
    lines = ["stateDiagram-v2", f"    [*] --> {S.submitted.value}: researcher submits"]
    for (src, dst), move in TRANSITIONS.items():
        lines.append(f"    {src.value} --> {dst.value}: {move.actor.value} ({move.event})")
    for s in RequestStatus:
        if s in FINAL:
            lines.append(f"    {s.value} --> [*]")
    return "\n".join(lines)
