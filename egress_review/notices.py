"""Who is told what when a request moves (enclave.notify queues it in the same transaction).

- entering `submitted` (a new request, or one resubmitted): the people who may review it: stewards for
  outputs, stewards and admins for code and packages coming in; never the requester or a member of the
  project (egress_review.permissions);
- `changes_requested`, `rejected`, `released`: the requester.
Messages name the request, its project and how many items it has; never a file name or contents.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from enclave import notify
from enclave.models import Role

PREFIX = "/services/egress"
TO_REQUESTER = {  # status (workflow.RequestStatus values) -> (word, sentence)
    "changes_requested": ("returned", "was returned to you: a reviewer asks for changes"),
    "rejected": ("rejected", "was rejected"),
    "released": ("released", "was approved"),
}


def _what(request) -> str:
    items = sum(1 for g in request.groups for f in g.files if f.status.value != "superseded")
    kind = "import request" if request.direction == "in" else "release request"
    return f"{kind} {request.id} (project {request.project}, {items} item(s))"


def status_changed(session: Session, request) -> None:
    link = f"{PREFIX}/requests/{request.id}"
    status = request.status.value
    if status == "submitted":
        roles = [Role.steward] + ([Role.admin] if request.direction == "in" else [])
        who = notify.people_with_role(session, roles, not_in_project=request.project, besides=request.requester)
        notify.queue(session, who, "request.submitted", f"Request {request.id} waits for review",
                     f"{request.requester} submitted {_what(request)}; it waits for review.", link)
    elif status in TO_REQUESTER:
        word, sentence = TO_REQUESTER[status]
        extra = " Approved outputs can be downloaded from its page." if (
            status == "released" and request.direction == "out") else ""
        notify.queue(session, [request.requester], f"request.{word}", f"Request {request.id} {word}",
                     f"Your {_what(request)} {sentence}.{extra}", link)
