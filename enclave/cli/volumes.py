"""`enclave volume list|raise`: what notebook servers sent toward people per person, project and day
(the host guard's record), and a steward's raise of one person's cap for one day."""

from __future__ import annotations

from enclave import db, projects, volumes
from enclave.cli.context import load
from enclave.cli.util import actor, parse_date, print_table
from enclave.clock import today


def register(sub) -> None:
    p = sub.add_parser("volume", help="bytes notebooks sent toward browsers, and daily caps")
    s = p.add_subparsers(dest="volume_cmd", required=True)
    ls = s.add_parser("list", help="one day's volumes, largest first")
    ls.add_argument("--day", help="YYYY-MM-DD (default today, UTC)")
    ls.set_defaults(func=_list)
    r = s.add_parser("raise", help="raise one person's cap in one project for today (audited)")
    r.add_argument("user")
    r.add_argument("project")
    r.add_argument("--mib", type=int, required=True, help="today's cap, in MiB")
    r.add_argument("--reason", required=True, help="why this person needs more today")
    r.set_defaults(func=_raise)


def _list(args) -> int:
    s = load(args)
    day = parse_date(args.day, "--day") or today()
    with db.transaction(s.database_url) as session:
        rows = [(v["project"], v["user"], f"{v['mib']:.1f}", v["cap_mib"], "raised" if v["raised"] else "")
                for v in volumes.daily_with_caps(session, s.guard, day)]
    print(f"volumes sent toward browsers on {day.isoformat()} (UTC):")
    print_table(["project", "user", "MiB", "cap MiB", ""], rows)
    return 0


def _raise(args) -> int:
    s = load(args)
    with db.transaction(s.database_url) as session:
        project = projects.get(session, args.project)
        volumes.raise_cap(session, actor(), args.user, project, args.mib, args.reason)
    print(f"'{args.user}' may send up to {args.mib} MiB from project '{args.project}' today; a running server "
          f"gets the new cap within [guard] sample_seconds ({s.guard.sample_seconds:g} s)")
    return 0
