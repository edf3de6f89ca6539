"""Code and packages coming in: a researcher asks, a steward or admin decides, the enclave applies it.

The same request machinery as outputs going out (models, workflow, review, permissions, audit), with
`direction = "in"` and `[imports] reviewers_required` decisions per item (one by default: code is not an
output). Two kinds of items:

- a package ask (`kind = "package"`): ecosystem, name, versions and why, stored as a small JSON blob so
  the reviewer sees exactly what was asked. Approved, it becomes an allowing rule for the project
  (enclave.packages.set_rule); when the repository lacks it, `enclave packages list --missing` names
  it for the next bundle.
- a code file (`kind = "file"`): uploaded bytes checked by egress_review.intake (refused outright when
  not code; findings for the reviewer otherwise), stored in the quarantine store. Approved, it is
  written to `[imports] workspace_folder` of the requester's workspace for the project, never over an
  existing file and never through a link.

`land` runs in the transaction of the decision that releases the request.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from sqlalchemy.orm import Session

from enclave import audit, clock, packages
from enclave import projects as projects_svc
from enclave.errors import EnclaveError, Invalid

from egress_review import intake, permissions, store, workflow, workspace
from egress_review.checks import FileVerdict, Finding, worst
from egress_review.models import FileGroup, ReleaseRequest, RequestFile
from egress_review.permissions import Person
from egress_review.workflow import FileStatus, RequestStatus

IN = "in"
PACKAGE, FILE = "package", "file"
MAX_WHY = 2000


def _why(why: str) -> str:
    why = (why or "").strip()
    if not why:
        raise Invalid("say why the project needs it (what analysis it is for)", reason="why_required")
    if len(why) > MAX_WHY:
        raise Invalid(f"keep the reason under {MAX_WHY} characters", reason="why_too_long")
    return why


def _store_bytes(state_dir, data: bytes, name: str, max_bytes: int) -> tuple[str, int]:
    fd = os.memfd_create("enclave-import")
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.lseek(fd, 0, os.SEEK_SET)
        return store.put_fd(state_dir, fd, max_bytes, name=name)
    finally:
        os.close(fd)


def _new_request(session: Session, settings, person: Person, project: str, group: FileGroup,
                 items: list[dict]) -> ReleaseRequest:
    now = clock.now()
    req = ReleaseRequest(project=project, requester=person.username, status=RequestStatus.submitted,
                         direction=IN, created_at=now, updated_at=now,
                         reviewers_required=settings.imports.reviewers_required)
    req.groups.append(group)
    session.add(req)
    session.flush()
    workflow.enter_initial(session, req, person.username, files=items)
    return req


# -- packages ---------------------------------------------------------------------------------------
def package_verdict(session: Session, ecosystem: str, name: str, versions: str, project: str) -> dict:
    """What the reviewer should know about a package ask: is it in the repository, is it denied or
    already allowed somewhere."""
    findings = []
    held = packages.versions_held(session, ecosystem, name)
    matching = [v for v in held if packages.version_matches(versions, v)]
    if matching:
        findings.append(Finding("package_in_repository", "pass", f"in the repository: {', '.join(matching)}"))
    else:
        findings.append(Finding("package_in_repository", "review", "not in the repository"
                                + (f" in these versions (it holds {', '.join(held)})" if held else "")
                                + ": approving adds it to what the next bundle must bring "
                                "(`enclave packages list --missing`)"))
    for e in packages.listing(session, project):
        if e.ecosystem == ecosystem and e.name == name:
            where = f"project {e.scope}" if e.scope else "the whole site"
            findings.append(Finding("package_rule", "pass" if e.allowed else "warn",
                                    f"already {'allowed' if e.allowed else 'denied'} for {where}"
                                    + (f" ({e.versions})" if e.versions else "")))
    return FileVerdict(f"{ecosystem}:{name}", worst(findings), findings, "package").to_dict()


def ask_package(session: Session, settings, person: Person, project_slug: str, ecosystem: str, name: str,
                versions: str, why: str) -> ReleaseRequest:
    project = projects_svc.get(session, project_slug)
    permissions.check_can_submit(person, project, clock.today())
    name = packages.normalise(ecosystem, name)
    versions = packages.check_versions(versions)
    why = _why(why)
    ask = json.dumps({"ecosystem": ecosystem, "name": name, "versions": versions, "why": why},
                     indent=1, sort_keys=True).encode()
    sha, size = _store_bytes(settings.state_dir, ask, "the package ask", 1 << 20)
    verdict = package_verdict(session, ecosystem, name, versions, project.slug)
    label = f"{name}{versions}" if ecosystem == "python" else f"{name}{versions} (R)"
    item = RequestFile(path=label, kind=PACKAGE, version=1, sha256=sha, size=size,
                       verdict=json.dumps(verdict, sort_keys=True), check_status=verdict["status"],
                       status=FileStatus.pending)
    group = FileGroup(name=f"{ecosystem} package", context=why, controls="-", files=[item])
    return _new_request(session, settings, person, project.slug, group, [
        {"package": f"{ecosystem}:{name}", "versions": versions, "sha256": sha}])


# -- code ---------------------------------------------------------------------------------------------
def bring_code(session: Session, settings, person: Person, project_slug: str, why: str,
               uploads: list[tuple[str, bytes]]) -> ReleaseRequest:
    project = projects_svc.get(session, project_slug)
    permissions.check_can_submit(person, project, clock.today())
    why = _why(why)
    cfg = settings.imports
    if not uploads:
        raise Invalid("choose at least one code file", reason="no_files")
    if len(uploads) > cfg.max_files:
        raise Invalid(f"{len(uploads)} files is more than the {cfg.max_files} allowed in one request",
                      reason="too_many_files")
    max_bytes = cfg.max_file_kib * 1024
    names, checked = set(), []
    for filename, data in uploads:  # every file is checked before any is stored
        name = intake.check_name(filename)
        if name in names:
            raise Invalid(f"two files are called '{name}'", reason="duplicate_file")
        names.add(name)
        checked.append((name, data, intake.check_code(name, data, max_bytes=max_bytes)))
    items, rows = [], []
    for name, data, findings in checked:
        sha, size = _store_bytes(settings.state_dir, data, f"'{name}'", max_bytes)
        scanned = intake.scan(store.blob_path(settings.state_dir, sha), Path(cfg.clamav_database))
        verdict = intake.verdict(name, findings + [scanned])
        rows.append(RequestFile(path=name, kind=FILE, version=1, sha256=sha, size=size,
                                verdict=json.dumps(verdict, sort_keys=True), check_status=verdict["status"],
                                status=FileStatus.pending))
        items.append({"path": name, "sha256": sha, "size": size, "checks": verdict["status"]})
    group = FileGroup(name="code", context=why, controls="-", files=rows)
    return _new_request(session, settings, person, project.slug, group, items)


# -- landing ------------------------------------------------------------------------------------------
def land(session: Session, settings, req: ReleaseRequest, actor: str) -> list[dict]:
    """Apply a released import: approved packages join the project's allow-list, approved code is written
    to the requester's workspace. A file that cannot be written is reported, never half-written."""
    done = []
    root = workspace.root_for(settings.state_dir, req.project, req.requester)
    for g in req.groups:
        for f in g.files:
            if f.status != FileStatus.approved:
                continue
            with store.open_verified(settings.state_dir, f.sha256, f.size) as blob:
                data = blob.read()
            if f.kind == PACKAGE:
                ask = json.loads(data)
                packages.set_rule(session, actor, ask["ecosystem"], ask["name"], allowed=True, project=req.project,
                                  versions=ask["versions"], reason=f"request {req.id}: {ask['why']}")
                done.append({"package": f"{ask['ecosystem']}:{ask['name']}", "versions": ask["versions"]})
                continue
            try:
                rel = workspace.write_new_file(root, settings.imports.workspace_folder, f.path, data)
                done.append({"path": f.path, "landed_at": rel, "sha256": f.sha256})
            except (EnclaveError, OSError) as exc:
                done.append({"path": f.path, "not_landed": str(exc)})
    audit.record(session, actor, "import.landed", workflow.target(req.id), {"project": req.project, "items": done})
    return done
