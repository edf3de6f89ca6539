"""Small helpers shared by the sub-commands."""

from __future__ import annotations

import datetime as dt
import getpass
import os

from enclave.errors import Invalid


def actor() -> str:
    """Who ran the command, as written in the audit log."""
    return "cli:" + (os.environ.get("SUDO_USER") or getpass.getuser())


def parse_date(value: str | None, what: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise Invalid(f"{what} '{value}' is not a date; write it as YYYY-MM-DD") from None


def print_table(headers: list[str], rows: list[tuple]) -> None:
    if not rows:
        print("(none)")
        return
    cells = [headers] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for r in cells:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
