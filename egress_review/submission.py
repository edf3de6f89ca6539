"""Researcher side: submit a request, replace files when changes are requested, resubmit, withdraw.

Submission reads every file through `workspace.open_file` (no links, no escape), copies it into the
quarantine store while hashing, runs the checks on the stored copy, and only then writes the request
rows and the audit event, all in the caller's transaction: either the whole request exists, or none of
it does (blobs already stored are content-addressed and harmless to keep).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from enclave import audit, clock
from enclave import projects as projects_svc
from enclave.errors import Conflict, Invalid, NotFound

from egress_review import checks_runner, permissions, store, workflow, workspace
from egress_review.models import FileGroup, ReleaseRequest, RequestFile
from egress_review.permissions import Person
from egress_review.workflow import FileStatus, Owner, RequestStatus

MIB = 1 << 20


@dataclass
class GroupSpec:
    name: str
    context: str
    controls: str
    paths: list[str] = field(default_factory=list)


@dataclass
class Snapshot:
    path: str
    sha256: str
    size: int
    verdict: dict


def _validate(groups: list[GroupSpec], egress) -> None:
    if not groups:
        raise Invalid("a request needs at least one group of files", reason="no_groups")
    names, paths = set(), set()
    for g in groups:
        g.name = (g.name or "").strip()
        if not g.name or len(g.name) > 100:
            raise Invalid("each group needs a name (up to 100 characters)", reason="group_name")
        if g.name in names:
            raise Invalid(f"two groups are called '{g.name}'; give each group its own name", reason="group_name")
        names.add(g.name)
        if not (g.context or "").strip():
            raise Invalid(f"group '{g.name}': say what these outputs show (context)", reason="context_required")
        if not (g.controls or "").strip():
            raise Invalid(f"group '{g.name}': say what disclosure controls were applied (controls)",
                          reason="controls_required")
        if not g.paths:
            raise Invalid(f"group '{g.name}' has no files; pick at least one", reason="no_files")
        for p in g.paths:
            workspace.clean(p)
            if p in paths:
                raise Invalid(f"'{p}' is listed twice; a file belongs to one group", reason="duplicate_file")
            paths.add(p)
    if len(paths) > egress.max_files_per_request:
        raise Invalid(f"{len(paths)} files is more than the {egress.max_files_per_request} allowed in one "
                      "request; split it", reason="too_many_files")


def snapshot(settings, project, username: str, rel: str, budget: list[int], policy) -> Snapshot:
    """Copy one workspace file into the quarantine store and check the stored copy."""
    egress = settings.egress
    root = workspace.root_for(settings.state_dir, project.slug, username)
    fd = workspace.open_file(root, rel, egress.max_file_mib * MIB)
    try:
        sha, size = store.put_fd(settings.state_dir, fd, egress.max_file_mib * MIB, name=f"'{rel}'")
    finally:
        os.close(fd)
    budget[0] += size
    if budget[0] > egress.max_request_mib * MIB:
        raise Invalid(f"the files add up to more than the {egress.max_request_mib} MiB allowed in one "
                      "request; split it", reason="request_too_large")
    verdict = checks_runner.run(store.blob_path(settings.state_dir, sha), policy, display_name=rel)
    return Snapshot(rel, sha, size, verdict)


def _file_row(snap: Snapshot, version: int) -> RequestFile:
    return RequestFile(
        path=snap.path, version=version, sha256=snap.sha256, size=snap.size,
        verdict=json.dumps(snap.verdict, sort_keys=True), check_status=snap.verdict.get("status", "review"),
        status=FileStatus.pending,
    )


def submit(session: Session, settings, person: Person, project_slug: str, groups: list[GroupSpec]) -> ReleaseRequest:
    project = projects_svc.get(session, project_slug)
    permissions.check_can_submit(person, project, clock.today())
    _validate(groups, settings.egress)
    budget = [0]
    policy = checks_runner.policy_for(session, settings, project)  # one per request: data read once
    snaps = {p: snapshot(settings, project, person.username, p, budget, policy) for g in groups for p in g.paths}
    now = clock.now()
    req = ReleaseRequest(project=project.slug, requester=person.username, status=RequestStatus.submitted,
                         created_at=now, updated_at=now, reviewers_required=settings.egress.reviewers_required)
    for g in groups:
        group = FileGroup(name=g.name, context=g.context.strip(), controls=g.controls.strip())
        group.files = [_file_row(snaps[p], 1) for p in g.paths]
        req.groups.append(group)
    session.add(req)
    session.flush()
    workflow.enter_initial(session, req, person.username, files=[
        {"path": s.path, "sha256": s.sha256, "size": s.size, "checks": s.verdict.get("status")}
        for s in snaps.values()
    ])
    return req


def lock_request(session: Session, request_id: int) -> None:
    """Serialise changes to one request: a no-op UPDATE as the transaction's first statement takes the
    row lock on PostgreSQL and the write lock on SQLite, so two stewards deciding at the same moment
    see each other's decision instead of both computing the outcome from a stale view."""
    session.execute(update(ReleaseRequest).where(ReleaseRequest.id == request_id)
                    .values(updated_at=ReleaseRequest.updated_at))


def lock_request_of_file(session: Session, file_id: int) -> None:
    session.execute(update(ReleaseRequest).where(ReleaseRequest.id == (
        select(FileGroup.request_id).join(RequestFile, RequestFile.group_id == FileGroup.id)
        .where(RequestFile.id == file_id).scalar_subquery()
    )).values(updated_at=ReleaseRequest.updated_at))


def get_request(session: Session, request_id: int) -> ReleaseRequest:
    req = session.get(ReleaseRequest, request_id)
    if req is None:
        raise NotFound(f"there is no release request {request_id}")
    return req


def get_file(session: Session, file_id: int) -> tuple[ReleaseRequest, RequestFile]:
    f = session.get(RequestFile, file_id)
    if f is None:
        raise NotFound(f"there is no submitted file {file_id}")
    return f.group.request, f


def withdraw(session: Session, person: Person, request_id: int) -> ReleaseRequest:
    lock_request(session, request_id)
    req = get_request(session, request_id)
    permissions.check_can_withdraw(person, req)
    workflow.set_status(session, req, RequestStatus.withdrawn, person.username, acting_as=Owner.researcher)
    return req


def _check_replaceable(person: Person, req: ReleaseRequest, old: RequestFile) -> None:
    permissions.check_can_update(person, req)
    if old.status == FileStatus.superseded:
        raise Conflict(f"'{old.path}' version {old.version} was already replaced", reason="superseded")


def replace_file(session: Session, settings, person: Person, file_id: int) -> RequestFile:
    """A new version of a file from the same workspace path; its reviews start again.

    The copy and checks run before the request is locked (they can take seconds), then everything is
    checked again under the lock before anything is written."""
    req, old = get_file(session, file_id)
    _check_replaceable(person, req, old)
    project = projects_svc.get(session, req.project)
    permissions.check_can_submit(person, project, clock.today())
    current = sum(f.size for g in req.groups for f in g.files if f.status != FileStatus.superseded)
    policy = checks_runner.policy_for(session, settings, project)
    snap = snapshot(settings, project, person.username, old.path, [current - old.size], policy)
    if snap.sha256 == old.sha256:
        raise Invalid(f"'{old.path}' has not changed since version {old.version}; edit it in your "
                      "workspace first", reason="unchanged")
    lock_request_of_file(session, file_id)
    session.expire_all()
    req, old = get_file(session, file_id)
    _check_replaceable(person, req, old)
    old.status = FileStatus.superseded
    new = _file_row(snap, old.version + 1)
    old.group.files.append(new)
    req.updated_at = clock.now()
    session.flush()
    audit.record(session, person.username, "egress.file_replaced", workflow.target(req.id), {
        "path": old.path, "version": new.version, "sha256": new.sha256, "previous_sha256": old.sha256,
        "checks": new.check_status,
    })
    return new


def resubmit(session: Session, person: Person, request_id: int) -> ReleaseRequest:
    lock_request(session, request_id)
    req = get_request(session, request_id)
    permissions.check_can_update(person, req)
    waiting = [f.path for g in req.groups for f in g.files if f.status == FileStatus.changes_requested]
    if waiting:
        raise Invalid("replace these files before resubmitting: " + ", ".join(waiting),
                      reason="changes_outstanding")
    workflow.set_status(session, req, RequestStatus.submitted, person.username, acting_as=Owner.researcher)
    return req


def requests_of(session: Session, username: str, limit: int = 200) -> list[ReleaseRequest]:
    return list(session.execute(
        select(ReleaseRequest).where(ReleaseRequest.requester == username)
        .order_by(ReleaseRequest.id.desc()).limit(limit)
    ).scalars())
