"""Stream a table file as Arrow record batches, whatever its format, in bounded memory.

CSV/TSV: read in 16 MiB chunks cut at line ends, each parsed by pyarrow's multi-threaded reader with
the column types of the first chunk (pyarrow's own streaming reader reads ahead without limit, so it is
used only when quoted line breaks make line-end cuts impossible). Before it starts, a sample (first
MiB) decides the delimiter, the encoding (UTF-8, else Latin-1), a decimal comma, and which suppression
markers (`*`, `<10`, `c`, `..`) stand for hidden numbers. When a later chunk holds decimals in an
integer column, or text in a numeric one, the read restarts with that column widened (at most a few
times; the caller starts its analysis again on `Restart`).
XLSX: openpyxl in read-only mode, row by row, one sheet after the other. Parquet: by row group.
Broken files raise `Unreadable` with a message for a person."""

from __future__ import annotations

import csv
import io
import itertools
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pyarrow as pa

from enclave import csv_types

from egress_review.checks import Unreadable

CSV_BLOCK_BYTES = 16 * 2**20  # bytes read and parsed at a time
CSV_PARSE_BLOCK_BYTES = 4 * 2**20  # pyarrow's block inside a chunk (one per thread)
XLSX_BATCH_ROWS = 5000
PARQUET_BATCH_ROWS = 64 * 1024
_SAMPLE_BYTES = 2**20
_MAX_RESTARTS = 8

# hidden-value markers: ONS ([c], [x], [low], [z]...), Eurostat (:), `*`, `<5`, `c`, `x`, `s`, `..`, `-`
MARKER = r"(<\s*=?\s*\d+|\*+|c|x|s|\.\.|:|\[[a-z]{1,8}\]|n/?a|suppressed|redacted|masked|secret|confidential|-)"
_MARKER_RE = re.compile(rf"^\s*{MARKER}\s*$", re.I)
_NUMBER_RE = re.compile(r"^\s*[-+]?(\d+([.,]\d*)?|[.,]\d+)([eE][-+]?\d+)?\s*$")
_COMMA_DECIMAL_RE = re.compile(r"^\s*[-+]?\d+,\d+\s*$")
_DEFAULT_NULLS = ["", "NA", "N/A", "NaN", "nan", "NULL", "null", "None", "#N/A"]


class Restart(Exception):
    """The read must start again from the top (a column turned out to be text); the reader already
    knows how to read it the next time, so the caller resets its analysis and reopens the stream."""


class EmptyTable(Unreadable):
    """Nothing in the file at all: nothing to disclose, but worth a word."""


@dataclass
class TableStream:
    """One table of a file: a sheet name or None, column names, notes for the reviewer, and `open()`
    giving an iterator of record batches (callable again after a `Restart`)."""

    sheet: str | None
    columns: list[str]
    open: Callable[[], Iterator[pa.RecordBatch]]
    notes: list[tuple[str, str]]  # (severity, message) about how the file was read
    place: str | None = None  # where a table inside another file is ("cell 3, table 1")


def open_tables(path: Path, name: str) -> Iterator[TableStream]:
    ext = PurePosixPath(name).suffix.lower()
    if ext == ".parquet":
        yield _parquet(path)
    elif ext == ".xlsx":
        yield from _xlsx(path)
    else:
        yield _csv(path, tab=ext in (".tsv", ".tab"))


# --- CSV -------------------------------------------------------------------------------------------

@dataclass
class _CsvDialect:
    delimiter: str
    encoding: str
    decimal_point: str
    markers: list[str]
    header: list[str]


def _sniff_csv(path: Path, tab: bool) -> _CsvDialect:
    with path.open("rb") as fh:
        raw = fh.read(_SAMPLE_BYTES)
    if not raw.strip():
        raise EmptyTable("the file is empty")
    if len(raw) == _SAMPLE_BYTES:  # cut at the last full line
        raw = raw[: raw.rfind(b"\n") + 1] or raw
    try:
        text = raw.decode("utf-8-sig")
        encoding = "utf8"
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
        encoding = "latin-1"
    lines = text.splitlines()[:20]
    if tab:
        delimiter = "\t"
    else:
        def consistent(d: str) -> int:
            counts = [len(next(csv.reader([ln], delimiter=d))) for ln in lines if ln.strip()]
            return counts[0] if counts and counts[0] > 1 and all(c == counts[0] for c in counts) else 0
        scores = {d: consistent(d) for d in (",", ";", "\t", "|")}
        delimiter = max(scores, key=scores.get) if any(scores.values()) else ","
    rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    if not rows:
        raise EmptyTable("the file is empty")
    header, body = rows[0], rows[1:1001]
    markers: set[str] = set()
    comma_decimals = 0
    for col in range(len(header)):
        values = [r[col] for r in body if col < len(r) and r[col].strip() != ""]
        numbers = [v for v in values if _NUMBER_RE.match(v)]
        found = {v for v in values if _MARKER_RE.match(v) and not _NUMBER_RE.match(v)}
        if numbers and found and len(numbers) + len(found) == len(values):
            markers |= found
        comma_decimals += sum(1 for v in numbers if _COMMA_DECIMAL_RE.match(v))
    decimal_point = "," if delimiter != "," and comma_decimals else "."
    return _CsvDialect(delimiter, encoding, decimal_point, sorted(markers), header)


def _csv(path: Path, tab: bool) -> TableStream:
    import pyarrow.csv as pacsv

    dialect = _sniff_csv(path, tab)
    notes = []
    if dialect.encoding != "utf8":
        notes.append(("pass", "the file is not UTF-8; read as Latin-1"))
    if dialect.markers:
        notes.append(("pass", "suppression markers read as hidden values: " + ", ".join(repr(m) for m in dialect.markers)))
    state = {"as_text": {}, "newlines_in_values": False, "restarts": 0}

    def restart(reason: str) -> Restart:
        state["restarts"] += 1
        if state["restarts"] > _MAX_RESTARTS:
            return Unreadable("too many columns mix numbers and text to read the file as a table: " + reason)
        return Restart(reason)

    names = _dedupe(dialect.header)

    def options(types: dict, skip_header: bool = False) -> tuple:
        read = pacsv.ReadOptions(column_names=names, block_size=CSV_PARSE_BLOCK_BYTES, encoding=dialect.encoding,
                                 skip_rows=1 if skip_header else 0)
        parse = pacsv.ParseOptions(delimiter=dialect.delimiter, newlines_in_values=state["newlines_in_values"])
        convert = pacsv.ConvertOptions(
            null_values=_DEFAULT_NULLS + dialect.markers, strings_can_be_null=True,
            decimal_point=dialect.decimal_point, column_types=types,
        )
        return read, parse, convert

    def batches() -> Iterator[pa.RecordBatch]:
        if state["newlines_in_values"]:
            yield from streamed()
            return
        # Our own chunking at line ends, each chunk parsed by the multi-threaded reader with the types
        # of the first chunk: bounded memory (pyarrow's streaming reader reads ahead without limit).
        fixed: dict | None = None
        with path.open("rb") as fh:
            fh.readline()  # the header: names come from the sniffed header
            rest = b""
            while True:
                data = fh.read(CSV_BLOCK_BYTES)
                buf = rest + data
                if data:
                    cut = buf.rfind(b"\n") + 1
                    if cut == 0:
                        rest = buf  # one line longer than a block: read on
                        continue
                    buf, rest = buf[:cut], buf[cut:]
                else:
                    rest = b""
                if buf and not buf.isspace():
                    types = dict(state["as_text"]) if fixed is None else {**fixed, **state["as_text"]}
                    try:
                        table = pacsv.read_csv(pa.BufferReader(buf), *options(types))
                    except pa.ArrowInvalid as exc:
                        raise _handle(str(exc), names) from None
                    if fixed is None:
                        fixed = {n: (pa.string() if pa.types.is_null(t) else t)
                                 for n, t in zip(names, table.schema.types)}
                    yield from table.to_batches()
                    del table
                if not data:
                    return

    def streamed() -> Iterator[pa.RecordBatch]:
        """Quoted line breaks: only pyarrow's streaming reader can follow them across blocks."""
        try:
            reader = pacsv.open_csv(pa.OSFile(str(path)), *options(dict(state["as_text"]), skip_header=True))
        except pa.ArrowInvalid as exc:
            raise _handle(str(exc), names) from None
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
            except pa.ArrowInvalid as exc:
                raise _handle(str(exc), names) from None
            yield batch

    def _handle(msg: str, names: list[str] | None) -> Exception:
        wider = csv_types.wider_type(msg, names or [], state["as_text"])
        if wider is not None:
            col, kind = wider
            state["as_text"][col] = kind
            return restart(f"column '{col}' holds {'decimals' if kind == pa.float64() else 'text'}")
        if "Expected" in msg and "columns" in msg and not state["newlines_in_values"]:
            state["newlines_in_values"] = True  # maybe quoted line breaks: read once more allowing them
            return restart("quoted line breaks")
        return Unreadable(_readable_csv_error(msg))

    return TableStream(None, names, batches, notes)




def _readable_csv_error(msg: str) -> str:
    m = re.search(r"Expected (\d+) columns, got (\d+): (.{0,80})", msg)
    if m:
        return (f"not a well-formed table: a row has {m.group(2)} fields where the header has "
                f"{m.group(1)} (row starts: {m.group(3)!r}); fix the quoting or delimiters")
    if "Empty CSV file" in msg:
        return "the file is empty"
    return "not a well-formed table: " + msg.splitlines()[0][:200]


def _dedupe(names: list[str], letters: bool = False) -> list[str]:
    """Unique, non-empty column names; an unnamed column is named by its place ("column 3", or the
    sheet's letter "column G")."""
    seen: dict[str, int] = {}
    out = []
    for i, n in enumerate(names):
        n = n.strip() or f"column {_letters(i) if letters else i + 1}"
        if n in seen:
            seen[n] += 1
            n = f"{n}.{seen[n]}"
        else:
            seen[n] = 0
        out.append(n)
    return out


def _letters(i: int) -> str:
    s = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        s = chr(65 + r) + s
    return s


# --- Parquet ---------------------------------------------------------------------------------------

def _parquet(path: Path) -> TableStream:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise Unreadable(f"not a readable Parquet file ({str(exc).splitlines()[0][:200]})") from None

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            yield from pf.iter_batches(batch_size=PARQUET_BATCH_ROWS)
        except (pa.ArrowException, OSError) as exc:
            raise Unreadable(f"the Parquet file is damaged ({str(exc).splitlines()[0][:200]})") from None

    return TableStream(None, _dedupe(pf.schema_arrow.names), batches, [])


# --- XLSX ------------------------------------------------------------------------------------------

def _workbook(fh):
    import zipfile

    from openpyxl import load_workbook

    try:
        return load_workbook(fh, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, TypeError) as exc:
        raise Unreadable(f"not a readable Excel workbook ({str(exc)[:200]})") from None
    except Exception as exc:  # openpyxl raises many kinds on a damaged workbook
        raise Unreadable(f"not a readable Excel workbook ({type(exc).__name__}: {str(exc)[:200]})") from None


def _xlsx(path: Path) -> Iterator[TableStream]:
    fh = path.open("rb")  # a file object: openpyxl refuses a path without .xlsx (a quarantined blob)
    try:
        wb = _workbook(fh)
    except Unreadable:
        fh.close()
        raise
    try:
        for ws in wb.worksheets:
            notes = []
            state = getattr(ws, "sheet_state", "visible")
            if state != "visible":
                notes.append(("review", f"sheet '{ws.title}' is {'very hidden' if state == 'veryHidden' else 'hidden'}"
                                        ": a person must check what it holds and why it is hidden"))
            rows = ws.iter_rows(values_only=True)
            peeked = []
            for row in rows:  # the first 20 non-empty rows decide where the header is
                if row and any(_filled(v) for v in row):
                    peeked.append(tuple(row))
                    if len(peeked) >= 20:
                        break
            if not peeked:
                continue
            most = max(sum(map(_filled, r)) for r in peeked)
            at = next(i for i, r in enumerate(peeked) if sum(map(_filled, r)) >= max(min(most, 2), most - 1))
            if at:  # title or note lines above the header
                above = " | ".join(str(v) for r in peeked[:at] for v in r if _filled(v))
                notes.append(("pass", f"sheet '{ws.title}': lines above the header read as a title: {above[:200]}"))
            header, body = peeked[at], peeked[at + 1:]
            width = max(max((i + 1 for i, v in enumerate(r) if _filled(v)), default=0) for r in [header, *body])
            names = _dedupe(["" if v is None else str(v) for v in header[:width]] + [""] * (width - len(header)),
                            letters=True)
            yield TableStream(ws.title, names,
                              lambda body=body, rows=rows, names=names, width=width, notes=notes, title=ws.title:
                              _xlsx_batches(itertools.chain(body, rows), names, width, notes, title), notes)
    finally:
        wb.close()
        fh.close()


def _is_note(row: tuple) -> bool:
    """A line of text alone in the first cell ("Source: ...", "Note: figures rounded"): a note, when
    nothing but other notes follows it."""
    return (len(row) > 1 and isinstance(row[0], str) and not _NUMBER_RE.match(row[0])
            and not any(_filled(v) for v in row[1:]))


def _xlsx_batches(rows, names: list[str], width: int, notes: list, title: str) -> Iterator[pa.RecordBatch]:
    chunk: list[tuple] = []
    held: list[tuple] = []  # note-like lines, kept back until a table row follows them (or the sheet ends)
    beyond = 0
    try:
        for row in rows:
            if len(row) > width and any(_filled(v) for v in row[width:]):
                beyond += 1
            row = tuple(row[:width]) + (None,) * (width - len(row))
            if all(v is None or not _filled(v) for v in row):
                continue
            if _is_note(row):
                held.append(row)
                continue
            chunk += held
            held = []
            chunk.append(row)
            if len(chunk) >= XLSX_BATCH_ROWS:
                yield _to_batch(chunk, names)
                chunk = []
    except Exception as exc:  # damaged sheet XML
        raise Unreadable(f"a sheet of the workbook is damaged ({type(exc).__name__}: {str(exc)[:200]})") from None
    if chunk:
        yield _to_batch(chunk, names)
    if held:
        text = " | ".join(str(r[0]).strip() for r in held)
        notes.append(("pass", f"sheet '{title}': lines under the table read as notes: {text[:300]}"))
    if beyond:
        notes.append(("review", f"sheet '{title}': {beyond} rows have values right of the table's columns; "
                                "they were not checked: a person must look at them"))


def _filled(v) -> bool:
    return v is not None and str(v).strip() != ""


def _to_batch(rows: list[tuple], names: list[str]) -> pa.RecordBatch:
    """One chunk of sheet rows as typed columns: numbers (also numbers typed as text, with suppression
    markers as hidden values) or text."""
    arrays = []
    for j in range(len(names)):
        values = [r[j] for r in rows]
        numbers = [_cell_number(v) for v in values]
        present = [v for v in values if v is not None]
        if not present:
            arrays.append(pa.nulls(len(values), pa.float64()))  # says nothing about the column's type
        elif all(n is not _TEXT for n in numbers) and any(n is not None for n in numbers):
            if all(isinstance(n, int) or n is None for n in numbers):
                arrays.append(pa.array(numbers, pa.int64()))
            else:
                arrays.append(pa.array([None if n is None else float(n) for n in numbers], pa.float64()))
        else:
            arrays.append(pa.array([None if v is None else _text(v) for v in values], pa.string()))
    return pa.RecordBatch.from_arrays(arrays, names=names)


_TEXT = object()
_LEADING_ZERO = re.compile(r"^\s*[-+]?0\d")


def _cell_number(v):
    """int/float for a number (or a number typed as text), None for empty or a suppression marker,
    _TEXT otherwise."""
    if v is None:
        return None
    if isinstance(v, bool):
        return _TEXT
    if isinstance(v, (int, float)):
        return v
    if isinstance(v, str):
        if _MARKER_RE.match(v) and not _NUMBER_RE.match(v):
            return None
        if _NUMBER_RE.match(v) and not _LEADING_ZERO.match(v):  # "075" is a code, not a number
            text = v.strip().replace(",", ".")
            try:
                return int(text)
            except ValueError:
                return float(text)
    return _TEXT


def _text(v) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if hasattr(v, "isoformat"):
        return v.isoformat()
    return str(v)


def json_file(path: Path, what: str):
    """A JSON file's content, or Unreadable saying it is not `what` (one reading for notebooks, ACRO...)."""
    try:
        with path.open("rb") as fh:
            return json.load(fh)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise Unreadable(f"{what} (invalid JSON: {exc})") from None
