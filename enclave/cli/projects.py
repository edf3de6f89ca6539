"""`enclave project create|list|suspend|close|resume|add-member|remove-member|limits`."""

from __future__ import annotations

import argparse

from enclave import access, db, projects, volumes
from enclave.cli.context import load
from enclave.cli.util import actor, parse_date, print_table
from enclave.errors import Invalid
from enclave.models import DEFAULT_MIN_CELL_COUNT, ProjectStatus


def register(sub) -> None:
    p = sub.add_parser("project", help="manage projects and their members")
    s = p.add_subparsers(dest="project_cmd", required=True)
    c = s.add_parser("create", help="create a project over a data folder")
    c.add_argument("slug")
    c.add_argument("--data", required=True, help="folder with the project's data (mounted read-only)")
    c.add_argument("--title", default="")
    c.add_argument("--start", help="first day (YYYY-MM-DD, default today)")
    c.add_argument("--end", help="last day (YYYY-MM-DD); nothing spawns after it")
    c.add_argument("--min-cell-count", type=int, default=DEFAULT_MIN_CELL_COUNT,
                   help="smallest count an output table may show (default 10; 11 for SNDS data)")
    c.add_argument("--purpose", default="", help="what the project is for, as the public register shows it")
    c.add_argument("--sponsor", default="", help="who sponsors or leads it (public register)")
    c.add_argument("--approval", default="", help="legal basis or approval reference, e.g. 'CNIL MR-004 "
                   "2026-118' (public register)")
    c.set_defaults(func=_create)
    s.add_parser("list", help="list projects").set_defaults(func=_list)
    for name, status in (("suspend", ProjectStatus.suspended), ("close", ProjectStatus.closed),
                         ("resume", ProjectStatus.active)):
        x = s.add_parser(name, help=f"mark a project {status.value}")
        x.add_argument("slug")
        x.set_defaults(func=_set_status, status=status)
    for name, fn in (("add-member", _add_member), ("remove-member", _remove_member)):
        m = s.add_parser(name, help=name.replace("-", " "))
        m.add_argument("slug")
        m.add_argument("user")
        m.set_defaults(func=fn)
    g = s.add_parser("limits", help="show or set the host guard's bounds for a project (servers started "
                     "from now on get them); 'site' goes back to the [guard] setting")
    g.add_argument("slug")
    for flag in ("--burst-mib", "--sustained-kib-per-s", "--daily-mib"):
        g.add_argument(flag, type=_number_or_site, metavar="N|site")
    g.add_argument("--terminals", choices=["on", "off", "site"])
    g.add_argument("--mem", metavar="SIZE|site", help="memory per notebook server, e.g. 8G ([spawner] mem_limit)")
    g.add_argument("--cpus", metavar="N|site", help="CPUs per notebook server, e.g. 2 ([spawner] cpu_limit)")
    g.set_defaults(func=_limits)


def _number_or_site(text: str):
    if text == "site":
        return projects.SITE
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is neither a whole number nor 'site'") from None


def _limits(args) -> int:
    s = load(args)
    changes = {f"guard_{k}": getattr(args, k) for k in ("burst_mib", "sustained_kib_per_s", "daily_mib")
               if getattr(args, k) is not None}
    if args.terminals is not None:
        changes["terminals"] = {"on": True, "off": False, "site": projects.SITE}[args.terminals]
    container = {}
    if args.mem:
        container["mem_limit"] = projects.SITE if args.mem == "site" else args.mem
    if args.cpus:
        try:
            container["cpu_limit"] = projects.SITE if args.cpus == "site" else float(args.cpus)
        except ValueError:
            raise Invalid(f"--cpus '{args.cpus}' is neither a number nor 'site'") from None
    with db.transaction(s.database_url) as session:
        project = projects.set_guard_bounds(session, actor(), args.slug, **changes) if changes \
            else projects.get(session, args.slug)
        if container:
            projects.set_container_limits(session, actor(), args.slug, **container)
        b = volumes.bounds_for(project, s.guard)
        own = {k: getattr(project, k) is not None for k in projects.GUARD_BOUNDS}
    mark = {True: "project", False: "site"}
    print_table(["bound", "value", "from"], [
        ("burst", f"{b.burst_bytes // volumes.MIB} MiB", mark[own["guard_burst_mib"]]),
        ("sustained", f"{b.sustained_bytes_per_s // 1024} KiB/s", mark[own["guard_sustained_kib_per_s"]]),
        ("daily cap", f"{b.daily_bytes // volumes.MIB} MiB", mark[own["guard_daily_mib"]]),
        ("terminals", "on" if b.terminals else "off", mark[own["terminals"]]),
        ("memory", project.mem_limit or s.spawner.mem_limit, mark[project.mem_limit is not None]),
        ("cpus", f"{project.cpu_limit or s.spawner.cpu_limit:g}", mark[project.cpu_limit is not None]),
    ])
    return 0


def _create(args) -> int:
    s = load(args)
    start = parse_date(args.start, "--start")
    end = parse_date(args.end, "--end")
    with db.transaction(s.database_url) as session:
        p = projects.create(session, actor(), args.slug, args.data, title=args.title, start=start,
                            end=end, min_cell_count=args.min_cell_count, purpose=args.purpose,
                            sponsor=args.sponsor, approval=args.approval)
    print(f"created project '{p.slug}' over {p.data_dir}")
    return 0


def _list(args) -> int:
    s = load(args)
    with db.transaction(s.database_url) as session:
        rows = [
            (p.slug, p.status.value, p.start_date, p.end_date or "", p.min_cell_count,
             ",".join(sorted(m.account.username for m in p.memberships)), p.data_dir)
            for p in projects.list_all(session)
        ]
    print_table(["project", "status", "start", "end", "min cell", "members", "data"], rows)
    return 0


def _set_status(args) -> int:
    access.set_project_status(load(args), actor(), args.slug, args.status)
    return 0


def _add_member(args) -> int:
    s = load(args)
    with db.transaction(s.database_url) as session:
        projects.add_member(session, actor(), args.slug, args.user)
    print(f"added '{args.user}' to '{args.slug}'")
    return 0


def _remove_member(args) -> int:
    access.remove_member(load(args), actor(), args.slug, args.user)
    return 0
