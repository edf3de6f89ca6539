"""The one seam for time: naive UTC datetimes everywhere, replaceable in tests."""

from __future__ import annotations

import datetime as _dt


def now() -> _dt.datetime:
    """Current time, naive UTC (what every column stores)."""
    return _dt.datetime.now(_dt.UTC).replace(tzinfo=None)


def today() -> _dt.date:
    return now().date()
