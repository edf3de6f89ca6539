"""`enclave demo [--reset] [--if-empty]`: a ready-to-try enclave for newcomers."""

from __future__ import annotations

from hub import demo
from hub.cli.context import load
from hub.errors import Conflict


def register(sub) -> None:
    p = sub.add_parser("demo", help="create the demo project, data and people (prints enrolment links)")
    p.add_argument("--reset", action="store_true", help="drop every enclave table and demo file first (stop the hub before)")
    p.add_argument("--if-empty", action="store_true", help="do nothing (exit 0) when the database already has accounts")
    p.set_defaults(func=_demo)


def _demo(args) -> int:
    s = load(args)
    if args.reset:
        demo.reset(s)
    elif demo.has_accounts(s.database_url):
        if args.if_empty:
            print("database already has accounts: demo not created (`enclave demo --reset` starts over)")
            return 0
        raise Conflict("the database already has accounts; `enclave demo --reset` drops everything and starts over")
    people = demo.create(s)
    print(f"demo project '{demo.DEMO_PROJECT}' with synthetic hospital stays in {s.state_dir / 'data' / demo.DEMO_PROJECT}")
    print("one-time enrolment links (open each in a browser, scan the QR code, set a password):")
    for p in people:
        print(f"  {p.username:6} {p.role:10} {p.enrolment_url}")
    print(f"then log in at {s.public_url}/hub/login")
    return 0
