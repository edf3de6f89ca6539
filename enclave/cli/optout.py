"""`enclave optout add|withdraw|status|apply`: patients' objections to reuse (docs/optout.md)."""

from __future__ import annotations

from pathlib import Path

from enclave import db
from enclave.cli.context import load
from enclave.cli.util import actor, print_table

from ingest import optout


def register(sub) -> None:
    p = sub.add_parser("optout", help="the register of patients who object to the reuse of their data")
    s = p.add_subparsers(dest="optout_cmd", required=True)
    for name, fn, what in (("add", _add, "record objections"), ("withdraw", _withdraw, "withdraw objections")):
        a = s.add_parser(name, help=f"{what}: identifiers from a CSV/Parquet file's column, or one per line on stdin (-)")
        a.add_argument("--id-column", required=True, help="the kind of identifier and the file's column, e.g. nir")
        a.add_argument("file", type=Path, help="CSV or Parquet file with that column, or - for stdin")
        a.set_defaults(func=fn)
    s.add_parser("status", help="how many objections are registered, and records removed per project"
                 ).set_defaults(func=_status)
    s.add_parser("apply", help="remove objecting people's records from every dataset already imported "
                 "(a new version of each affected file; members are told)").set_defaults(func=_apply)


def _add(args) -> int:
    s = load(args)
    optout.check_kind(s, args.id_column)
    c = optout.add(s, actor(), args.id_column, optout.read_identifiers(args.file, args.id_column))
    print(f"{c.kind}: {c.changed} objection(s) recorded, {c.unchanged} already registered, {c.empty} blank skipped")
    if c.changed:
        print("run `enclave optout apply` to remove their records from data already imported")
    return 0


def _withdraw(args) -> int:
    s = load(args)
    optout.check_kind(s, args.id_column)
    c = optout.withdraw(s, actor(), args.id_column, optout.read_identifiers(args.file, args.id_column))
    print(f"{c.kind}: {c.changed} objection(s) withdrawn, {c.unchanged} not on the register")
    return 0


def _status(args) -> int:
    s = load(args)
    with db.transaction(s.database_url) as session:
        t = optout.totals(session)
    print(f"objections registered: {t.objections} (withdrawn: {t.withdrawn})")
    print_table(["project", "records removed"], sorted(t.removed_by_project.items()))
    return 0


def _apply(args) -> int:
    s = load(args)
    done = optout.apply(s, actor())
    rows = [(a.project, name, n) for a in done for name, n in sorted(a.removed.items())]
    print_table(["project", "dataset", "records removed"], rows)
    if not rows:
        print("no dataset holds an objecting person's records")
    return 0
