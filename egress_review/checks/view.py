"""A table as the rules that look at it whole see it (arithmetic, evidence, releases): its first rows
as Python values, the roles of its columns, and how people name its cells."""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

_TOTAL = re.compile(r"^\s*(total|totals|all|overall|ensemble|sum|somme|tous|toutes|all ages|tous ages)\b")


def canon(v) -> str | None:
    """One text form per value, so that 42, 42.0 and ' 42 ' agree and case does not matter."""
    if v is None:
        return None
    if isinstance(v, bool):
        return str(int(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        if math.isnan(v):
            return None
        return str(int(v)) if float(v).is_integer() else repr(round(float(v), 6))
    if isinstance(v, dt.datetime):
        return v.date().isoformat() if v.time() == dt.time(0) else v.isoformat(sep=" ")
    if isinstance(v, dt.date):
        return v.isoformat()
    s = " ".join(str(v).split()).lower()
    if re.fullmatch(r"-?\d+(\.0+)?", s):  # '07', '7.0' and 7 agree: a code loses its zeros in a CSV round trip
        s = str(int(float(s))) if len(s) < 16 else s
    return s or None


def is_total(label) -> bool:
    return isinstance(label, str) and bool(_TOTAL.match(label.lower()))


def shown(v) -> bool:
    """A value a reader sees (not hidden, not missing)."""
    return v is not None and not (isinstance(v, float) and math.isnan(v))


@dataclass
class TableView:
    """What evidence needs of a table: its first rows as Python values, and the roles of its columns."""

    columns: list[str]
    values: dict[str, list]  # column -> values (None for hidden)
    labels: list[str]
    counts: list[str]
    measures: list[str]  # statistics, magnitudes, extremes: numeric columns that are not counts
    row_label: Callable  # row position -> the label people read ('North / M')
    col_label: Callable = staticmethod(lambda c: c)
    # filled by the evidence: column -> what the data says it is ("mean of 'los_days'")
    recognised: dict = field(default_factory=dict)

    @property
    def n_rows(self) -> int:
        return len(next(iter(self.values.values()))) if self.values else 0


