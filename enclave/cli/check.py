"""`enclave check FILE... [--json] [--project SLUG]`: the egress disclosure checks before submitting.

Exit status: 0 when no file fails (pass, warn and review all need no change from the command's point of
view), 1 when at least one file fails, 2 on usage errors (missing file, unknown project, bad settings).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from enclave.errors import Invalid

_MARK = {"pass": "PASS  ", "warn": "WARN  ", "review": "REVIEW", "fail": "FAIL  "}


def register(sub) -> None:
    p = sub.add_parser(
        "check", help="run the disclosure checks of the egress review on files",
        description="Run the automated disclosure checks that every file asked out of the enclave goes "
        "through. Exit status: 0 nothing fails, 1 something fails, 2 usage error.")
    p.add_argument("files", nargs="+", metavar="FILE", help="files to check")
    p.add_argument("--json", action="store_true", help="print a JSON list, one object per file")
    p.add_argument("--project", metavar="SLUG",
                   help="use this project's disclosure policy (its min_cell_count) and compare with its input data")
    p.set_defaults(func=_check)


def policy_for(args):
    """The policy: the site's [disclosure] thresholds and [egress] size limit, and with --project that
    project's policy as the review service builds it: its smallest cell count, its imported data as
    evidence and its released tables (ACRO's defaults for anything the settings leave out)."""
    from enclave import settings as settings_mod

    from egress_review.checks import policy_from_settings

    if not args.project:
        return policy_from_settings(settings_mod.load(getattr(args, "config", None)))
    from enclave import db, projects
    from enclave.cli.context import load

    from egress_review import checks_runner

    s = load(args)
    with db.transaction(s.database_url) as session:
        project = projects.get(session, args.project)  # NotFound: "no project 'x' (see ...)"
        return checks_runner.policy_for(session, s, project)  # the review service's policy, data included


def _check(args) -> int:
    from egress_review.checks import check_file

    paths = [Path(f) for f in args.files]
    for p in paths:
        if not p.exists():
            raise Invalid(f"{p}: no such file")
        if p.is_dir():
            raise Invalid(f"{p} is a folder; name the files in it")
    policy = policy_for(args)
    verdicts = [check_file(p, policy, display_name=str(p)) for p in paths]
    if args.json:
        json.dump([v.to_dict() for v in verdicts], sys.stdout, indent=2, ensure_ascii=False)
        print()
    else:
        for v in verdicts:
            _print(v)
        if policy.project:
            print(f"(policy of project '{policy.project}': no cell under {policy.min_cell_count})")
    return 1 if any(v.status == "fail" for v in verdicts) else 0


def _print(v) -> None:
    print(f"{_MARK[v.status]}  {v.file}  ({v.kind})")
    for f in v.findings:
        print(f"    {f.severity:<6}  {f.check}: {f.message}")
        for row, col in f.cells[:10]:
            print(f"              - row {row!r}, column {col!r}")
        if len(f.cells) > 10:
            print(f"              ... and {len(f.cells) - 10} more listed with --json")
