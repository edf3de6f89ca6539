"""Release of approved bytes: requester only, hash-checked against the store, every attempt audited.

A refused download caused by a tampered or missing store file is audited in its own transaction (the
refusal must be on record even though nothing is sent), then the refusal is raised.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import BinaryIO

from enclave import audit, db
from enclave.errors import EnclaveError

from egress_review import permissions, store, workflow
from egress_review.models import Download
from egress_review.people import person_for
from egress_review.submission import get_file


def fetch(db_url: str, state_dir, username: str, file_id: int) -> tuple[str, BinaryIO, int, str]:
    """(file name, verified bytes at position 0, size, sha256) of a released file."""
    failure: EnclaveError | None = None
    with db.transaction(db_url) as session:
        person = person_for(session, username)
        req, f = get_file(session, file_id)
        permissions.check_can_download(person, req, f)
        try:
            data = store.open_verified(state_dir, f.sha256, f.size)
        except EnclaveError as exc:
            failure = exc
            audit.record(session, username, "egress.download_refused", workflow.target(req.id), {
                "file_id": f.id, "path": f.path, "sha256": f.sha256, "reason": exc.reason, "detail": exc.detail,
            })
        else:
            session.add(Download(file_id=f.id, username=username, sha256=f.sha256))
            audit.record(session, username, "egress.download", workflow.target(req.id), {
                "file_id": f.id, "path": f.path, "sha256": f.sha256, "size": f.size,
            })
            name, size, sha = PurePosixPath(f.path).name, f.size, f.sha256
    if failure is not None:
        raise failure
    return name, data, size, sha
