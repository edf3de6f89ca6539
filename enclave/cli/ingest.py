"""`enclave data import|list|risk|destroy-key`: bring data into a project and look after its keys."""

from __future__ import annotations

import json
from pathlib import Path

from enclave import db
from enclave.cli.context import load
from enclave.cli.util import actor, print_table
from enclave.errors import Invalid

from ingest import importer, keys


def _columns(value: str | None) -> list[str]:
    if not value:
        return []
    cols = [c.strip() for c in value.split(",")]
    if any(not c for c in cols):
        raise Invalid(f"empty column name in '{value}' (write a,b,c)")
    return cols


def register(sub) -> None:
    p = sub.add_parser("data", help="import data into a project, report its re-identification risk")
    s = p.add_subparsers(dest="data_cmd", required=True)

    i = s.add_parser("import", help="import a CSV or Parquet file into a project's data folder")
    i.add_argument("slug", help="project")
    i.add_argument("source", help="CSV (optionally .gz) or Parquet file")
    i.add_argument("--id-columns", help="columns holding identifiers, replaced by per-project pseudonyms (a,b)")
    i.add_argument("--drop", help="columns not to import at all (c,d)")
    i.add_argument("--quasi-identifiers", help="columns someone could know about a person (age,sex,postcode): "
                   "the risk report is computed on them")
    i.add_argument("--name", help="dataset name (default: from the file name)")
    i.add_argument("--accept-risk", metavar="REASON",
                   help="import even when the risk is above the site threshold; the reason is audited")
    i.set_defaults(func=_import)

    ls = s.add_parser("list", help="list a project's imported datasets")
    ls.add_argument("slug")
    ls.set_defaults(func=_list)

    r = s.add_parser("risk", help="re-identification risk report of a file, without importing it")
    r.add_argument("slug", help="project (for its thresholds)")
    r.add_argument("source")
    r.add_argument("--quasi-identifiers", required=True)
    r.add_argument("--out", help="folder to write <name>.risk.json and <name>.risk.html into")
    r.set_defaults(func=_risk)

    d = s.add_parser("destroy-key", help="destroy a closed project's pseudonym key (irreversible)")
    d.add_argument("slug")
    d.set_defaults(func=_destroy_key)


def _summary(rep) -> str:
    m = rep.measures
    return (f"k={m['k']}, unique records {m['unique_records']} ({m['unique_share']:.2%}), "
            f"in classes under 5: {m['share_under_5']:.2%}, under 11: {m['share_under_11']:.2%}")


def _import(args) -> int:
    s = load(args)
    req = importer.ImportRequest(
        project=args.slug, source=Path(args.source).expanduser(), id_columns=_columns(args.id_columns),
        drop=_columns(args.drop), quasi_identifiers=_columns(args.quasi_identifiers), name=args.name,
        accept_risk=args.accept_risk,
    )
    res = importer.import_dataset(s, actor(), req)
    print(f"imported '{res.name}' into '{args.slug}': {res.rows} rows, {len(res.columns)} columns -> {res.file}")
    if req.id_columns:
        print(f"pseudonymised: {', '.join(req.id_columns)}" + (" (new project key created)" if res.key_created else ""))
    if req.drop:
        print(f"dropped: {', '.join(req.drop)}")
    objections = json.loads(res.manifest.read_text()).get("objections")
    if objections:
        print(f"opt-out register ({', '.join(objections['register_kinds'])}): {res.removed_for_objections} record(s) "
              f"removed (the manifest, which researchers read, says: {objections['removed']})")
    else:
        print("opt-out register: not checked (no column of a kind it takes, see [optout] id_columns)")
    if res.report:
        print(f"risk on {', '.join(req.quasi_identifiers)}: {_summary(res.report)}")
        if res.problems:
            print("ABOVE THRESHOLD, accepted: " + args.accept_risk.strip())
        print(f"risk report: {res.file.with_suffix('.risk.html')}")
    else:
        print("risk not assessed: no --quasi-identifiers given")
    print(f"manifest: {res.manifest}")
    return 0


def _list(args) -> int:
    s = load(args)
    rows = []
    for d in importer.list_datasets(s, args.slug):
        m = json.loads(d.manifest)
        r = m.get("risk") or {}
        rows.append((d.name, d.rows, d.columns, d.imported_at.strftime("%Y-%m-%d %H:%M"), d.imported_by,
                     r.get("k", "-") if r else "-",
                     f"{r['unique_share']:.2%}" if r else "-", "yes" if d.risk_accepted else ""))
    print_table(["dataset", "rows", "columns", "imported", "by", "k", "unique", "risk accepted"], rows)
    return 0


def _risk(args) -> int:
    s = load(args)
    qis = _columns(args.quasi_identifiers)
    rep, problems = importer.risk_only(s, args.slug, Path(args.source).expanduser(), qis)
    print(f"risk on {', '.join(qis)}: {_summary(rep)}")
    for p in problems:
        print(f"ABOVE THRESHOLD: {p}")
    for sug in rep.suggestions:
        print(f"  {sug['change']}: k={sug['k']}, unique {sug['unique_share']:.2%}")
    if args.out:
        from ingest import risk
        out = Path(args.out).expanduser()
        out.mkdir(parents=True, exist_ok=True)
        name = importer.default_name(Path(args.source))
        verdict = "above the site threshold: " + "; ".join(problems) if problems else "within the site threshold"
        for p in risk.write(rep, out, name, dataset=name, verdict=verdict):
            print(f"wrote {p}")
    return 0


def _destroy_key(args) -> int:
    s = load(args)
    with db.transaction(s.database_url) as session:
        keys.destroy(session, actor(), s.state_dir, args.slug)
    print(f"destroyed the pseudonym key of '{args.slug}': its pseudonyms can no longer be linked to identifiers")
    return 0
