"""Claims: a reviewer takes a request on, so no more reviewers than it needs start the same one.

A request has room for `reviewers_required` claims. A reviewer who may review it claims it (audited
`egress.claim`) and may let it go (`egress.unclaim`). Once the room is full, only the claimers (and
reviewers who already decided on it) may record decisions; everyone else is told who has it. A request
nobody claimed is open to every reviewer, as before.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from enclave import audit, clock
from enclave.errors import Conflict

from egress_review import permissions, workflow
from egress_review.models import Claim, ReleaseRequest
from egress_review.permissions import Person
from egress_review.submission import get_request, lock_request
from egress_review.workflow import FileStatus


def claimers(req: ReleaseRequest) -> list[str]:
    return [c.steward for c in req.claims]


def deciders(req: ReleaseRequest) -> list[str]:
    """Who has decided on a current item of the request (names only: what they decided stays hidden)."""
    return sorted({r.steward for g in req.groups for f in g.files if f.status != FileStatus.superseded
                   for r in f.reviews})


def check_may_decide(person: Person, req: ReleaseRequest) -> None:
    """With every claim taken by others, a reviewer who has not decided yet is turned away."""
    taken = claimers(req)
    if len(taken) >= req.reviewers_required and person.username not in taken \
            and person.username not in deciders(req):
        raise Conflict(f"request {req.id} is claimed by {', '.join(taken)}; pick another one from the queue",
                       reason="claimed")


def claim(session: Session, person: Person, request_id: int) -> ReleaseRequest:
    lock_request(session, request_id)
    req = get_request(session, request_id)
    permissions.check_can_review(person, req)
    taken = claimers(req)
    if person.username in taken:
        return req
    if len(taken) >= req.reviewers_required:
        raise Conflict(f"request {req.id} already has the {req.reviewers_required} reviewer(s) it needs: "
                       f"{', '.join(taken)}", reason="claimed")
    req.claims.append(Claim(steward=person.username, claimed_at=clock.now()))
    session.flush()
    audit.record(session, person.username, "egress.claim", workflow.target(req.id), {"project": req.project})
    return req


def unclaim(session: Session, person: Person, request_id: int) -> ReleaseRequest:
    lock_request(session, request_id)
    req = get_request(session, request_id)
    mine = [c for c in req.claims if c.steward == person.username]
    if not mine:
        raise Conflict(f"you have not claimed request {req.id}", reason="not_claimed")
    req.claims.remove(mine[0])
    session.flush()
    audit.record(session, person.username, "egress.unclaim", workflow.target(req.id), {"project": req.project})
    return req
