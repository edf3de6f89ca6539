"""Who may do what in the review queue: pure `check_*` functions (raise PermissionDenied/Conflict/Invalid)
and `can_*` functions (bool). No database access here; callers pass what they loaded.

Rules worth knowing:
- Researchers see and act on their own requests only, and submit only from projects they belong to
  while the project is open.
- Stewards and admins review. A reviewer may never review a request they are part of: not their own,
  and not one from a project they are a member of (stewards normally belong to no project, see
  enclave.projects.add_member, but an account's role can change).
- Reviewers do not see other reviewers' decisions on a file until they have recorded their own
  (independent review); the requester sees decisions and comments once the request has left review.
- Only the requester downloads, only released, approved files.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from enclave.errors import Conflict, Invalid, PermissionDenied
from enclave.models import Project, Role
from enclave.permissions import project_open

from egress_review.workflow import OPEN, Decision, FileStatus, Owner, RequestStatus, moves

REVIEWER_ROLES = frozenset({Role.steward, Role.admin})


@dataclass(frozen=True)
class Person:
    username: str
    role: Role
    projects: frozenset[str] = field(default_factory=frozenset)  # slugs the person is a member of

    @property
    def is_reviewer(self) -> bool:
        return self.role in REVIEWER_ROLES


def can_review_at_all(person: Person) -> bool:
    return person.is_reviewer


def check_can_see_queue(person: Person) -> None:
    if not person.is_reviewer:
        raise PermissionDenied("the review queue is for output checkers (stewards); your requests are "
                               "listed on the home page", reason="not_reviewer")


def check_can_submit(person: Person, project: Project, today: dt.date) -> None:
    if person.role != Role.researcher:
        raise PermissionDenied("only researchers submit outputs for release", reason="not_researcher")
    if project.slug not in person.projects:
        raise PermissionDenied(f"you are not a member of project '{project.slug}'", reason="not_member")
    if not project_open(project, today):
        raise PermissionDenied(f"project '{project.slug}' is not open (suspended, closed or outside its "
                               "dates); ask an administrator", reason="project_closed")


def check_can_browse(person: Person, project: Project) -> None:
    if project.slug not in person.projects:
        raise PermissionDenied(f"you are not a member of project '{project.slug}'", reason="not_member")


def is_part_of(person: Person, request) -> bool:
    return person.username == request.requester or request.project in person.projects


def can_view_request(person: Person, request) -> bool:
    return person.username == request.requester or person.is_reviewer


def check_can_view_request(person: Person, request) -> None:
    if not can_view_request(person, request):
        raise PermissionDenied(f"request {request.id} is not yours", reason="not_yours")


def check_is_requester(person: Person, request, doing: str) -> None:
    if person.username != request.requester:
        raise PermissionDenied(f"only the researcher who made request {request.id} can {doing}",
                               reason="not_requester")


def check_can_withdraw(person: Person, request) -> None:
    check_is_requester(person, request, "withdraw it")
    if RequestStatus.withdrawn not in moves(request.status, Owner.researcher):
        raise Conflict(f"request {request.id} is already {request.status.value}", reason="final")


def check_can_update(person: Person, request) -> None:
    """Replace files / resubmit: only while changes are requested, and only outputs (code coming in is
    uploaded, not read from the workspace: a new version is a new request)."""
    check_is_requester(person, request, "change it")
    if request.direction != "out":
        raise Conflict(f"request {request.id} brings code or a package in; withdraw it and ask again with "
                       "the new version", reason="import_not_replaceable")
    if RequestStatus.submitted not in moves(request.status, Owner.researcher):
        raise Conflict(f"request {request.id} is {request.status.value.replace('_', ' ')}; files can be "
                       "replaced only when a steward has requested changes", reason="not_changes_requested")


def check_can_review(person: Person, request) -> None:
    if not person.is_reviewer:
        raise PermissionDenied("only stewards review outputs", reason="not_reviewer")
    if person.username == request.requester:
        raise PermissionDenied("you cannot review your own request; another steward must",
                               reason="own_request")
    if request.project in person.projects:
        raise PermissionDenied(f"you are a member of project '{request.project}', so you cannot review "
                               "its outputs", reason="member_of_project")
    if not moves(request.status, Owner.steward):
        raise Conflict(f"request {request.id} is {request.status.value.replace('_', ' ')}, not waiting "
                       "for review", reason="not_in_review")


def check_decision(file, decision: Decision, comment: str, override_reason: str) -> None:
    """What a decision must carry: a comment for changes/rejection, a reason to approve a failed check."""
    if file.status == FileStatus.superseded:
        raise Conflict("this version of the file has been replaced; review the current one",
                       reason="superseded")
    if decision in (Decision.request_changes, Decision.reject) and not comment.strip():
        raise Invalid("say in a comment what the researcher should change or why it is refused",
                      reason="comment_required")
    if decision == Decision.approve and file.check_status == "fail" and not override_reason.strip():
        raise Invalid("the automated checks failed this file; approving it needs a written override reason",
                      reason="override_reason_required")


def can_see_other_decisions(person: Person, request, file_reviews) -> bool:
    """Independent review: a steward sees others' decisions only after deciding; the requester after review."""
    if person.is_reviewer and person.username != request.requester:
        return any(r.steward == person.username for r in file_reviews) or request.status not in OPEN
    return request.status in (RequestStatus.changes_requested,) or request.status not in OPEN


def check_can_download(person: Person, request, file) -> None:
    check_is_requester(person, request, "download its files")
    if request.direction != "out":
        raise PermissionDenied(f"request {request.id} brings something in; nothing of it is downloaded",
                               reason="not_an_output")
    if request.status != RequestStatus.released or file.status != FileStatus.approved:
        raise PermissionDenied(f"'{file.path}' is not released", reason="not_released")


def check_can_preview(person: Person, request) -> None:
    """Only reviewers see quarantined bytes: for a researcher, a preview would be a way out before review."""
    if not person.is_reviewer or person.username == request.requester:
        raise PermissionDenied("file contents are shown to output checkers only; researchers get their "
                               "files once released", reason="not_reviewer")
