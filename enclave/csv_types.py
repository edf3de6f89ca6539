"""One fallback for CSV read in blocks (the importer in ingest/, the disclosure checks' readers): pyarrow
guesses each column's type from the first block; when a later block does not fit, the column the error
names is read again, wider. Decimals in an integer column widen to float64; anything else to text.
"""

from __future__ import annotations

import re

import pyarrow as pa

_COLUMN_ERR = re.compile(r"In CSV column #(\d+): (?:Row #\d+: )?CSV conversion error")
_BAD_VALUE = re.compile(r"conversion error to (\w+): invalid value '(.*)'")
_NUMBER = re.compile(r"^\s*[-+]?(\d+([.,]\d*)?|[.,]\d+)([eE][-+]?\d+)?\s*$")


def wider_type(message: str, names: list[str], already: dict[str, pa.DataType]) -> tuple[str, pa.DataType] | None:
    """(column, type to read it as next) for a pyarrow CSV conversion error, or None when the error is
    something else or the column is already text (nothing wider exists: the file is what it is)."""
    m = _COLUMN_ERR.search(message)
    if not m or int(m.group(1)) >= len(names):
        return None
    col = names[int(m.group(1))]
    if already.get(col) == pa.string():
        return None
    v = _BAD_VALUE.search(message)
    widen = v and v.group(1).startswith(("int", "uint")) and _NUMBER.match(v.group(2)) and col not in already
    return col, (pa.float64() if widen else pa.string())
