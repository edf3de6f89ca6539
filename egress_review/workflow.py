"""The review workflow as data: statuses, valid transitions, who holds a request in each status, and the
audit event of each transition. `set_status` is the one path that changes a request's status.

There is no "draft": a request is created already submitted, in one transaction, with its files
snapshotted, so nothing half-described ever reaches the queue. The steward side moves a request out of
review by deciding on files; `request_outcome` says where the decisions lead.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import TYPE_CHECKING

from hub import audit, clock
from hub.errors import Conflict

if TYPE_CHECKING:  # pragma: no cover
    from sqlalchemy.orm import Session

    from .models import ReleaseRequest


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

# from -> allowed next statuses (final statuses map to the empty set)
VALID_TRANSITIONS: dict[RequestStatus, frozenset[RequestStatus]] = {
    S.submitted: frozenset({S.under_review, S.withdrawn}),
    S.under_review: frozenset({S.changes_requested, S.released, S.rejected, S.withdrawn}),
    S.changes_requested: frozenset({S.submitted, S.withdrawn}),
    S.released: frozenset(),
    S.rejected: frozenset(),
    S.withdrawn: frozenset(),
}

STATUS_OWNERS: dict[RequestStatus, Owner] = {
    S.submitted: Owner.steward,
    S.under_review: Owner.steward,
    S.changes_requested: Owner.researcher,
    S.released: Owner.nobody,
    S.rejected: Owner.nobody,
    S.withdrawn: Owner.nobody,
}

# audit action written when a request ENTERS each status (creation enters `submitted` too)
STATUS_EVENTS: dict[RequestStatus, str] = {
    S.submitted: "egress.submit",
    S.under_review: "egress.review_started",
    S.changes_requested: "egress.changes_requested",
    S.released: "egress.release",
    S.rejected: "egress.reject",
    S.withdrawn: "egress.withdraw",
}

# who causes each transition (checked by permissions before the service calls set_status)
TRANSITION_ACTORS: dict[tuple[RequestStatus, RequestStatus], Owner] = {
    (S.submitted, S.under_review): Owner.steward,
    (S.submitted, S.withdrawn): Owner.researcher,
    (S.under_review, S.changes_requested): Owner.steward,
    (S.under_review, S.released): Owner.steward,
    (S.under_review, S.rejected): Owner.steward,
    (S.under_review, S.withdrawn): Owner.researcher,
    (S.changes_requested, S.submitted): Owner.researcher,
    (S.changes_requested, S.withdrawn): Owner.researcher,
}

FINAL = frozenset(s for s, nxt in VALID_TRANSITIONS.items() if not nxt)
OPEN = frozenset(RequestStatus) - FINAL


def target(request_id: int) -> str:
    return f"egress-request:{request_id}"


def set_status(session: Session, request: ReleaseRequest, new: RequestStatus, actor: str, **detail) -> None:
    """Move `request` to `new` and write the audit event, in the caller's transaction."""
    old = request.status
    if new not in VALID_TRANSITIONS[old]:
        raise Conflict(
            f"request {request.id} is {old.value.replace('_', ' ')} and cannot become "
            f"{new.value.replace('_', ' ')}; reload the page to see its current state",
            reason="invalid_transition",
        )
    request.status = new
    request.updated_at = clock.now()
    session.flush()
    audit.record(session, actor, STATUS_EVENTS[new], target(request.id),
                 {"from": old.value, "to": new.value, "project": request.project, **detail})


def enter_initial(session: Session, request: ReleaseRequest, actor: str, **detail) -> None:
    """A new request starts submitted; its creation is audited as the submit event."""
    request.status = S.submitted
    request.updated_at = clock.now()
    session.flush()
    audit.record(session, actor, STATUS_EVENTS[S.submitted], target(request.id),
                 {"from": None, "to": S.submitted.value, "project": request.project, **detail})


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
    for (src, dst), who in TRANSITION_ACTORS.items():
        lines.append(f"    {src.value} --> {dst.value}: {who.value} ({STATUS_EVENTS[dst]})")
    for s in RequestStatus:
        if s in FINAL:
            lines.append(f"    {s.value} --> [*]")
    return "\n".join(lines)
