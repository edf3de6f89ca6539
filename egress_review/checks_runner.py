"""The one seam to the automated disclosure checks (egress_review.checks), run on quarantined bytes.

`policy_for` builds one policy per request: the project's thresholds, its imported data as evidence
(each dataset column read once for all the request's files) and the tables it has already released
(for the differencing checks). Checks that crash, here or inside `check_file`, give the one crashed
verdict (`checks.crashed`: fail), so a file never goes through unseen and the queue never stops.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from egress_review import store
from egress_review.checks import Policy, check_file, crashed, policy_from_settings
from egress_review.checks.filetypes import TABLE_EXTENSIONS
from egress_review.models import FileGroup, ReleaseRequest, RequestFile
from egress_review.workflow import FileStatus, RequestStatus

log = logging.getLogger(__name__)
RELEASED_TABLES = 200  # the newest released tables compared with a new one


def released_tables(session: Session, state_dir: Path, project: str) -> list[tuple[str, Path]]:
    """(name, stored copy) of the project's released tables, newest first."""
    rows = session.execute(
        select(RequestFile.path, RequestFile.sha256)
        .join(FileGroup, RequestFile.group_id == FileGroup.id)
        .join(ReleaseRequest, FileGroup.request_id == ReleaseRequest.id)
        .where(ReleaseRequest.project == project, ReleaseRequest.direction == "out",
               ReleaseRequest.status == RequestStatus.released,
               RequestFile.status == FileStatus.approved)
        .order_by(RequestFile.id.desc())
    ).all()
    out = []
    for path, sha in rows:
        if Path(path).suffix.lower() in TABLE_EXTENSIONS:
            blob = store.blob_path(state_dir, sha)
            if blob.is_file():
                out.append((path, blob))
        if len(out) >= RELEASED_TABLES:
            break
    return out


def policy_for(session: Session, settings, project) -> Policy:
    """The checks' policy for one request in `project` (an enclave.models.Project)."""
    return policy_from_settings(
        settings, min_cell_count=project.min_cell_count, project=project.slug, data_dir=project.data_dir,
        released=tuple(released_tables(session, settings.state_dir, project.slug)))


def run(blob: Path, policy: Policy, *, display_name: str) -> dict:
    """Verdict for one stored file under the request's policy."""
    try:
        verdict = check_file(blob, policy, display_name).to_dict()
        json.dumps(verdict)  # must be storable
        return verdict
    except Exception as exc:  # noqa: BLE001 - any failure means "a person must look"
        log.exception("automated checks failed on %s", display_name)
        return crashed(display_name, "unknown", exc).to_dict()
