"""`enclave egress list|verify-store`: the operator's view of the review queue and of the quarantine store."""

from __future__ import annotations

import sys

from sqlalchemy import select

from enclave import audit, db
from enclave.cli.context import load
from enclave.cli.util import actor, print_table
from enclave.errors import NotFound

from egress_review import store
from egress_review.models import ReleaseRequest, RequestFile
from egress_review.workflow import RequestStatus


def register(sub) -> None:
    p = sub.add_parser("egress", help="release requests and the quarantine store")
    s = p.add_subparsers(dest="egress_cmd", required=True)
    ls = s.add_parser("list", help="release requests, newest first")
    ls.add_argument("--status", choices=[x.value for x in RequestStatus])
    ls.add_argument("--project")
    ls.add_argument("--limit", type=int, default=50)
    ls.set_defaults(func=_list)
    v = s.add_parser("verify-store", help="re-hash every stored file a request refers to; exit 1 if any "
                     "is missing or altered")
    v.set_defaults(func=_verify)


def _list(args) -> int:
    s = load(args)
    with db.transaction(s.database_url) as session:
        stmt = select(ReleaseRequest).order_by(ReleaseRequest.id.desc()).limit(args.limit)
        if args.status:
            stmt = stmt.where(ReleaseRequest.status == RequestStatus(args.status))
        if args.project:
            stmt = stmt.where(ReleaseRequest.project == args.project)
        rows = [(r.id, r.project, r.requester, r.status.value, r.updated_at.isoformat(timespec="seconds"))
                for r in session.execute(stmt).scalars()]
    print_table(["id", "project", "requester", "status", "updated (UTC)"], rows)
    return 0


def _verify(args) -> int:
    s = load(args)
    with db.transaction(s.database_url) as session:
        blobs = dict(session.execute(select(RequestFile.sha256, RequestFile.size).distinct()).all())
    bad = []
    for sha, size in sorted(blobs.items()):
        try:
            store.verify(s.state_dir, sha, size)
        except NotFound:
            bad.append((sha, "missing"))
        except store.StoreTampered:
            bad.append((sha, "altered"))
    with db.transaction(s.database_url) as session:
        audit.record(session, actor(), "egress.store_verified", "quarantine",
                     {"blobs": len(blobs), "bad": [{"sha256": h, "problem": p} for h, p in bad]})
    for sha, problem in bad:
        print(f"{problem}: {sha}", file=sys.stderr)
    print(f"{len(blobs)} stored files checked, {len(bad)} missing or altered",
          file=sys.stderr if bad else sys.stdout)
    return 1 if bad else 0
