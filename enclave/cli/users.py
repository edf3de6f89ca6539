"""`enclave user add|list|disable|reset-mfa|notify`."""

from __future__ import annotations

from enclave import access, accounts, db, notify
from enclave.cli.context import load
from enclave.cli.util import actor, print_table
from enclave.errors import Invalid


def register(sub) -> None:
    p = sub.add_parser("user", help="manage accounts")
    s = p.add_subparsers(dest="user_cmd", required=True)
    a = s.add_parser("add", help="create an account; prints its one-time enrolment URL last")
    a.add_argument("name")
    a.add_argument("--role", required=True, help="researcher, steward or admin")
    a.add_argument("--email", help="address for notifications (none: no mail)")
    a.set_defaults(func=_add)
    s.add_parser("list", help="list accounts").set_defaults(func=_list)
    d = s.add_parser("disable", help="disable an account (it can no longer log in)")
    d.add_argument("name")
    d.set_defaults(func=_disable)
    r = s.add_parser("reset-mfa", help="forget the user's TOTP, recovery codes and lock; prints a new "
                     "enrolment URL last")
    r.add_argument("name")
    r.set_defaults(func=_reset_mfa)
    n = s.add_parser("notify", help="set where and how a person is told (e-mail address; immediate or daily digest)")
    n.add_argument("name")
    n.add_argument("--email", help="the address ('' removes it: no mail)")
    n.add_argument("--digest", dest="notify", action="store_const", const=notify.DIGEST,
                   help="one message a day ([mail] digest_hour)")
    n.add_argument("--immediate", dest="notify", action="store_const", const=notify.IMMEDIATE,
                   help="a message as things happen (the default)")
    n.set_defaults(func=_notify)


def _add(args) -> int:
    s = load(args)
    role = accounts.parse_role(args.role)
    with db.transaction(s.database_url) as session:
        account, token = accounts.add(session, actor(), args.name, role, s.auth.enrolment_valid_hours)
        if args.email:
            notify.set_preferences(session, actor(), args.name, email=args.email)
    print(f"created {account.role.value} '{account.username}'; enrolment link valid "
          f"{s.auth.enrolment_valid_hours:g} h, usable once:")
    print(accounts.enrolment_url(s, token))  # last, so scripts can take the link from the last line
    return 0


def _list(args) -> int:
    s = load(args)
    with db.transaction(s.database_url) as session:
        rows = [
            (a.username, a.role.value, a.status.value, "yes" if a.totp_secret and a.enrolled_at else "no",
             a.locked_until.isoformat(timespec="seconds") if a.locked_until else "",
             f"{a.email} ({a.notify})" if a.email else "")
            for a in accounts.list_all(session)
        ]
    print_table(["user", "role", "status", "mfa", "locked until", "mail"], rows)
    return 0


def _disable(args) -> int:
    s = load(args)
    access.disable_account(s, actor(), args.name)
    return 0


def _reset_mfa(args) -> int:
    s = load(args)
    token = access.reset_mfa(s, actor(), args.name)
    print(f"reset MFA of '{args.name}': old codes and recovery codes no longer work; the account must "
          f"enrol again with this link (valid {s.auth.enrolment_valid_hours:g} h, usable once):")
    print(accounts.enrolment_url(s, token))
    return 0


def _notify(args) -> int:
    if args.email is None and args.notify is None:
        raise Invalid("say what to change: --email ADDRESS, --digest or --immediate", reason="nothing_to_do")
    s = load(args)
    with db.transaction(s.database_url) as session:
        a = notify.set_preferences(session, actor(), args.name, email=args.email, notify=args.notify)
        print(f"'{a.username}': " + (f"mail to {a.email}, {a.notify}" if a.email else "no mail (no address)"))
    return 0
