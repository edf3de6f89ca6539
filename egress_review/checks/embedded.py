"""Tables inside notebooks and text files: what a printed DataFrame or an HTML table shows is an output
like any CSV, so it gets the same checks (and the project's data as evidence).

Found:
- HTML tables (`<table>` in a `text/html` output: `DataFrame._repr_html_`, `to_html`), header from
  the first row;
- printed tables in text (`text/plain` outputs, stream outputs, `.txt`/`.md`/`.log` files): 3 or more
  consecutive lines splitting on spaces into the same number of fields, the header possibly one
  field short (pandas prints the index without a name); a first field that is the row number 0, 1, 2...
  is dropped; comma- or tab-separated lines the same way.

A value with spaces inside splits a printed line into more fields, so such a table is not found (a
person still reads every text and notebook output: they stay `review`).
"""

from __future__ import annotations

import csv
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

MAX_TABLES = 50
MAX_ROWS = 100_000
MIN_ROWS = 2


@dataclass
class Embedded:
    place: str  # "cell 3, table 1" / "table 2 (line 14)"
    header: list[str]
    rows: list[list[str]]


class _Tables(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tables: list[list[list[str]]] = []
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._depth = 0

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self._depth += 1
            if self._depth == 1:
                self.tables.append([])
        elif tag == "tr" and self._depth == 1:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            if self.tables and self._row:
                self.tables[-1].append(self._row)
            self._row = None
        elif tag == "table":
            self._depth = max(0, self._depth - 1)

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def html_tables(html: str, place: str) -> list[Embedded]:
    parser = _Tables()
    try:
        parser.feed(html)
        parser.close()
    except Exception:  # noqa: BLE001 - broken HTML: what was parsed so far is kept
        pass
    out = []
    for k, rows in enumerate(parser.tables[:MAX_TABLES], start=1):
        if len(rows) < 1 + MIN_ROWS:
            continue
        header, body = rows[0], rows[1:]
        if body and all(c == "" for c in body[0][1:]) and len(body[0]) == len(header):
            body = body[1:]  # pandas' second header row: the index name alone
        width = max(len(header), *(len(r) for r in body))
        header = header + [""] * (width - len(header))
        body = [r + [""] * (width - len(r)) for r in body]
        out.append(_named(Embedded(f"{place}, table {k}", header, body[:MAX_ROWS])))
    return out


_SPLITTERS = (("\t", re.compile(r"\t")), (",", re.compile(r"\s*,\s*")), (" ", re.compile(r"\s+")))


def text_tables(text: str, place: str, first_line: int = 1) -> list[Embedded]:
    lines = text.splitlines()
    out: list[Embedded] = []
    i = 0
    while i < len(lines) and len(out) < MAX_TABLES:
        found = _table_at(lines, i)
        if found is None:
            i += 1
            continue
        end, header, rows = found
        out.append(_named(Embedded(f"{place}, table {len(out) + 1} (line {first_line + i})", header, rows[:MAX_ROWS])))
        i = end
    return out


def _table_at(lines: list[str], i: int):
    head = lines[i].strip()
    if not head:
        return None
    for sep, split in _SPLITTERS:
        if sep != " " and sep not in head:
            continue
        header = split.split(head)
        rows: list[list[str]] = []
        j = i + 1
        while j < len(lines) and lines[j].strip():
            fields = split.split(lines[j].strip())
            if len(fields) not in (len(header), len(header) + 1):
                break
            rows.append(fields)
            j += 1
        if len(rows) < MIN_ROWS or len({len(r) for r in rows}) != 1 or len(header) < 2 and len(rows[0]) < 2:
            continue
        if len(rows[0]) == len(header) + 1:
            header = ["index"] + header  # pandas prints the index without a header
        if header[0] == "index" and all(r[0].isdigit() for r in rows) and \
                [int(r[0]) for r in rows] == list(range(int(rows[0][0]), int(rows[0][0]) + len(rows))):
            header, rows = header[1:], [r[1:] for r in rows]  # the row numbers of a printed DataFrame
        if not any(re.search(r"\d", v) for r in rows for v in r):
            continue  # words, not a table
        return j, header, rows
    return None


def _named(t: Embedded) -> Embedded:
    t.header = [h if h else ("index" if k == 0 else f"column {k + 1}") for k, h in enumerate(t.header)]
    return t


def as_csv_files(tables: list[Embedded]) -> Iterator[tuple[Embedded, Path]]:
    """Each table written as a CSV file, so the table checks read it as they read any CSV."""
    with tempfile.TemporaryDirectory(prefix="enclave-embedded-") as tmp:
        for k, t in enumerate(tables):
            p = Path(tmp) / f"t{k}.csv"
            with p.open("w", newline="", encoding="utf-8") as fh:
                w = csv.writer(fh)
                w.writerow(t.header)
                w.writerows(t.rows)
            yield t, p
