"""`enclave project create|list|suspend|close|add-member|remove-member`."""

from __future__ import annotations

from hub import db, projects, revocation
from hub.cli.context import load
from hub.cli.util import actor, parse_date, print_table
from hub.models import ProjectStatus


def register(sub) -> None:
    p = sub.add_parser("project", help="manage projects and their members")
    s = p.add_subparsers(dest="project_cmd", required=True)
    c = s.add_parser("create", help="create a project over a data folder")
    c.add_argument("slug")
    c.add_argument("--data", required=True, help="folder with the project's data (mounted read-only)")
    c.add_argument("--title", default="")
    c.add_argument("--start", help="first day (YYYY-MM-DD, default today)")
    c.add_argument("--end", help="last day (YYYY-MM-DD); nothing spawns after it")
    c.add_argument("--min-cell-count", type=int, default=10,
                   help="smallest count an output table may show (default 10; 11 for SNDS data)")
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


def _create(args) -> int:
    s = load(args)
    start = parse_date(args.start, "--start")
    end = parse_date(args.end, "--end")
    with db.transaction(s.database_url) as session:
        p = projects.create(session, actor(), args.slug, args.data, title=args.title, start=start,
                            end=end, min_cell_count=args.min_cell_count)
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
    s = load(args)
    with db.transaction(s.database_url) as session:
        projects.set_status(session, actor(), args.slug, args.status)
    print(f"project '{args.slug}' is now {args.status.value}")
    if args.status != ProjectStatus.active:
        revocation.stop_now(s, actor(), project=args.slug)
    if args.status == ProjectStatus.closed:
        _remove_network(s, args.slug)
    return 0


def _remove_network(s, slug: str) -> None:
    """A closed project gives its Docker network back (Docker's address pools are finite)."""
    import docker

    from hub import network

    try:
        client = docker.from_env(timeout=30)
        client.ping()
    except Exception as exc:  # noqa: BLE001 - no engine here: the close itself is done
        print(f"project network not removed: no Docker engine answers ({type(exc).__name__})")
        return
    print(network.remove_project_network(client, s.spawner.network_prefix, slug))


def _add_member(args) -> int:
    s = load(args)
    with db.transaction(s.database_url) as session:
        projects.add_member(session, actor(), args.slug, args.user)
    print(f"added '{args.user}' to '{args.slug}'")
    return 0


def _remove_member(args) -> int:
    s = load(args)
    with db.transaction(s.database_url) as session:
        projects.remove_member(session, actor(), args.slug, args.user)
    print(f"removed '{args.user}' from '{args.slug}'")
    revocation.end_access_now(s, actor(), args.user, "not_member", project=args.slug)
    return 0
