"""`enclave audit verify|export`."""

from __future__ import annotations

import sys

from enclave import audit, db
from enclave.cli.context import load


def register(sub) -> None:
    p = sub.add_parser("audit", help="check or export the audit log")
    s = p.add_subparsers(dest="audit_cmd", required=True)
    v = s.add_parser("verify", help="check the hash chain; exit 1 and name the first broken event")
    v.set_defaults(func=_verify)
    e = s.add_parser("export", help="write the log as JSON lines")
    e.add_argument("--output", "-o", help="file to write (default: standard output)")
    e.set_defaults(func=_export)


def _verify(args) -> int:
    s = load(args)
    with db.transaction(s.database_url) as session:
        verdict = audit.verify(session)
    print(verdict, file=sys.stdout if verdict.ok else sys.stderr)
    return 0 if verdict.ok else 1


def _export(args) -> int:
    s = load(args)
    with db.transaction(s.database_url) as session:
        if args.output:
            with open(args.output, "w") as fh:
                n = audit.export(session, fh)
            print(f"wrote {n} events to {args.output}", file=sys.stderr)
        else:
            audit.export(session, sys.stdout)
    return 0
