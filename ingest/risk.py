"""Re-identification risk of a dataset's quasi-identifiers (k-anonymity), for the data steward.

An equivalence class is the set of records sharing one combination of quasi-identifier values (age,
sex, postcode...). A record in a class of size 1 is unique: anyone who knows those few facts about a
person finds their record. We count records per class batch by batch (:class:`ClassCounter`, memory
bounded by the number of distinct combinations, not of records), then report: k (the smallest class),
how many records are unique / in classes under 5 / under 11, the smallest classes, the effect of
leaving each quasi-identifier out, and generalisations (age bands, shorter postcodes, dates to month or
year) with the k each would reach. Written as JSON and as an HTML page for the steward.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

COUNT = "__records"
TOP_CLASSES = 10
_COMPACT_AT = 2_000_000  # rows of partial class counts kept before merging them


class ClassCounter:
    """Records per combination of quasi-identifier values, accumulated over record batches.

    Each record's combination is reduced to a 64-bit hash of its normalised values (the fingerprint
    hashes, which the importer computes anyway); per batch the distinct hashes are counted with a
    numpy sort and one record of each is kept to show its values. Merging batches is a sort of hashes,
    not a group-by over text columns. Two different combinations sharing a hash (chance about
    classes^2 / 2^65) would be counted as one.
    """

    def __init__(self, quasi_identifiers: list[str]):
        self.qis = list(quasi_identifiers)
        self._keys: list[np.ndarray] = []
        self._counts: list[np.ndarray] = []
        self._values: list[pa.Table] = []
        self._pending = 0

    def add(self, batch: pa.RecordBatch | pa.Table, hashed: dict[str, np.ndarray] | None = None) -> None:
        """Count one batch; `hashed` may give column hashes already computed (by column name)."""
        if not self.qis or batch.num_rows == 0:
            return
        from enclave import fingerprints

        hashed = hashed or {}
        key = fingerprints.combine([hashed[q] if q in hashed else fingerprints.hash_column(batch.column(q))
                                    for q in self.qis])
        values = batch.select(self.qis)
        if isinstance(values, pa.RecordBatch):
            values = pa.Table.from_batches([values])
        self._push(key, np.ones(len(key), dtype=np.int64), values)

    def _push(self, key: np.ndarray, counts: np.ndarray, values: pa.Table) -> None:
        order = np.argsort(key, kind="stable")
        k = key[order]
        starts = np.flatnonzero(np.concatenate(([True], k[1:] != k[:-1]))) if len(k) else np.empty(0, np.int64)
        self._keys.append(k[starts])
        self._counts.append(np.add.reduceat(counts[order], starts) if len(k) else counts[:0])
        self._values.append(values.take(pa.array(order[starts])))
        self._pending += len(starts)
        if self._pending > _COMPACT_AT and len(self._keys) > 1:
            self._compact()

    def _compact(self) -> None:
        if len(self._keys) <= 1:
            return
        key, counts = np.concatenate(self._keys), np.concatenate(self._counts)
        values = pa.concat_tables(self._values)
        self._keys, self._counts, self._values, self._pending = [], [], [], 0
        self._push(key, counts, values)

    def classes(self) -> pa.Table:
        """One row per combination with its record count in column COUNT."""
        self._compact()
        if not self._keys:
            return pa.table({**{q: pa.array([], pa.null()) for q in self.qis}, COUNT: pa.array([], pa.int64())})
        return self._values[0].append_column(COUNT, pa.array(self._counts[0]))


def _regroup(t: pa.Table, keys: list[str]) -> pa.Table:
    if not keys:
        return pa.table({COUNT: [int(pc.sum(t[COUNT]).as_py() or 0)]})
    g = t.group_by(keys).aggregate([(COUNT, "sum")])
    return g.rename_columns([*keys, COUNT])


def measures(classes: pa.Table | np.ndarray) -> dict:
    """k and how many records sit in small classes, from the class table (or its array of class sizes)."""
    if isinstance(classes, pa.Table):
        c = classes[COUNT].to_numpy() if classes.num_rows else np.empty(0, np.int64)
    else:
        c = np.asarray(classes, dtype=np.int64)
    total = int(c.sum())
    if total == 0:
        return {"records": 0, "classes": 0, "k": None, "unique_records": 0, "unique_share": 0.0,
                "records_in_classes_under_5": 0, "share_under_5": 0.0,
                "records_in_classes_under_11": 0, "share_under_11": 0.0}
    unique = int((c == 1).sum())
    u5 = int(c[c < 5].sum())
    u11 = int(c[c < 11].sum())
    return {
        "records": total, "classes": int(len(c)), "k": int(c.min()),
        "unique_records": unique, "unique_share": unique / total,
        "records_in_classes_under_5": u5, "share_under_5": u5 / total,
        "records_in_classes_under_11": u11, "share_under_11": u11 / total,
    }


def _jsonable(v):
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    return str(v)


def smallest_classes(classes: pa.Table, qis: list[str], limit: int = TOP_CLASSES) -> list[dict]:
    """The combinations that single people out most: the smallest classes, smallest first."""
    if not qis or classes.num_rows == 0:
        return []
    keys = [(COUNT, "ascending")] + [(q, "ascending") for q in qis]
    few = classes.take(pc.select_k_unstable(classes, k=limit, sort_keys=[(COUNT, "ascending")]))
    top = few.take(pc.sort_indices(few, sort_keys=keys)).to_pylist()  # O(n) selection, then a tiny sort
    return [{"values": {q: _jsonable(row[q]) for q in qis}, "records": row[COUNT]} for row in top]


# --- generalisations ---------------------------------------------------------------------------

_AGE = re.compile(r"(^|_)(age|âge|age_years|ageyears)($|_)", re.I)
_POSTCODE = re.compile(r"post|zip|^cp$|_cp$|^cp_|code_?postal|codepostal|postal|commune|insee", re.I)
_DATE = re.compile(r"date|birth|dob|naiss|^dt_|_dt$", re.I)


@dataclass
class Generalisation:
    column: str
    label: str
    fn: callable  # pa.Array -> pa.Array


def _band(width: int):
    def fn(a: pa.Array) -> pa.Array:
        f = pc.floor(pc.divide(pc.cast(a, pa.float64()), float(width)))
        return pc.cast(pc.multiply(f, float(width)), pa.int64(), safe=False)
    return fn


def _prefix(n: int):
    def fn(a: pa.Array) -> pa.Array:
        if pa.types.is_integer(a.type):  # a postcode read as a number lost its leading zeros: drop digits
            return pc.divide(a, pa.scalar(10 ** (5 - n), a.type))
        return pc.utf8_slice_codeunits(pc.cast(a, pa.string()), 0, n)
    return fn


def _date_part(chars: int):
    def fn(a: pa.Array) -> pa.Array:
        if pa.types.is_timestamp(a.type):
            a = pc.cast(a, pa.timestamp("s"), safe=False)
        return pc.utf8_slice_codeunits(pc.cast(a, pa.string()), 0, chars)  # 'YYYY-MM-DD...' prefix
    return fn


def candidate_generalisations(classes: pa.Table, qis: list[str]) -> list[list[Generalisation]]:
    """Per quasi-identifier that looks like an age, a postcode or a date: its generalisations, mild first."""
    out = []
    for q in qis:
        t = classes.schema.field(q).type
        numeric = pa.types.is_integer(t) or pa.types.is_floating(t)
        if numeric and (_AGE.search(q) or _looks_like_age(classes[q])) and not _POSTCODE.search(q):
            out.append([Generalisation(q, f"{q} in 5-year bands", _band(5)),
                        Generalisation(q, f"{q} in 10-year bands", _band(10))])
        elif _POSTCODE.search(q) and (pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_integer(t)):
            out.append([Generalisation(q, f"{q} to its first 3 characters", _prefix(3)),
                        Generalisation(q, f"{q} to its first 2 characters", _prefix(2))])
        elif pa.types.is_date(t) or pa.types.is_timestamp(t) or (
                _DATE.search(q) and (pa.types.is_string(t) or pa.types.is_large_string(t))):
            out.append([Generalisation(q, f"{q} to month (YYYY-MM)", _date_part(7)),
                        Generalisation(q, f"{q} to year (YYYY)", _date_part(4))])
    return out


def _looks_like_age(col: pa.ChunkedArray) -> bool:
    mm = pc.min_max(col)
    lo, hi = mm["min"].as_py(), mm["max"].as_py()
    return lo is not None and lo >= 0 and hi <= 125 and pa.types.is_integer(col.type)


class _Codes:
    """The class table with each quasi-identifier replaced by integer codes into its distinct values.

    A generalisation then only transforms the (small) list of distinct values, and regrouping is a
    numpy sort of one int64 key per class instead of a group-by over text columns.
    """

    def __init__(self, classes: pa.Table, qis: list[str]):
        self.qis = qis
        self.counts = classes[COUNT].to_numpy().astype(np.int64) if classes.num_rows else np.empty(0, np.int64)
        self.values: dict[str, pa.Array] = {}
        self.codes: dict[str, np.ndarray] = {}
        for q in qis:
            enc = pc.dictionary_encode(classes[q].combine_chunks(), null_encoding="encode")
            self.values[q] = enc.dictionary
            self.codes[q] = enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)

    def sizes(self, gens: list[Generalisation] = (), leave_out: str | None = None) -> np.ndarray:
        """Class sizes after applying `gens` (and leaving one quasi-identifier out)."""
        columns = []
        for q in self.qis:
            if q == leave_out:
                continue
            codes, n = self.codes[q], len(self.values[q])
            for g in gens:
                if g.column == q:
                    enc = pc.dictionary_encode(g.fn(self.values[q]), null_encoding="encode")
                    codes = enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)[codes]
                    n = len(enc.dictionary)
            columns.append((codes, max(n, 1)))
        if len(self.counts) == 0:
            return self.counts
        if not columns:
            return np.array([self.counts.sum()])
        span = 1
        for _, n in columns:
            span *= n
        if span < 2**62:
            key = np.zeros(len(self.counts), dtype=np.int64)
            for codes, n in columns:
                key = key * n + codes
        else:  # too many combinations for one integer: let Arrow group the code columns
            t = pa.table({f"c{i}": c for i, (c, _) in enumerate(columns)} | {COUNT: self.counts})
            return _regroup(t, [f"c{i}" for i in range(len(columns))])[COUNT].to_numpy()
        if span <= max(4 * len(key), 1 << 24):  # dense enough: count straight into an array
            sums = np.bincount(key, weights=self.counts, minlength=span)
            return sums[sums > 0].astype(np.int64)
        order = np.argsort(key)
        key, counts = key[order], self.counts[order]
        starts = np.flatnonzero(np.concatenate(([True], key[1:] != key[:-1])))
        return np.add.reduceat(counts, starts)


def _short(m: dict) -> dict:
    return {k: m[k] for k in ("k", "classes", "unique_records", "unique_share", "share_under_5", "share_under_11")}


def suggestions(classes: pa.Table, qis: list[str]) -> list[dict]:
    """What each generalisation (alone, then all together) and leaving each QI out would reach."""
    rows = []
    if not qis or classes.num_rows == 0:
        return rows
    codes = _Codes(classes, qis)
    cands = candidate_generalisations(classes, qis)
    for levels in cands:
        for g in levels:
            rows.append({"change": g.label, "columns": [g.column], **_short(measures(codes.sizes([g])))})
    for level in (0, 1):
        if len(cands) > 1:
            gens = [levels[level] for levels in cands]
            label = "all of: " + "; ".join(g.label for g in gens)
            rows.append({"change": label, "columns": [g.column for g in gens],
                         **_short(measures(codes.sizes(gens)))})
    if len(qis) > 1:
        for q in qis:
            rows.append({"change": f"leave out {q}", "columns": [q], **_short(measures(codes.sizes(leave_out=q)))})
    return rows


@dataclass
class Report:
    quasi_identifiers: list[str]
    measures: dict
    smallest_classes: list[dict]
    suggestions: list[dict]

    def to_dict(self) -> dict:
        return {"quasi_identifiers": self.quasi_identifiers, **self.measures,
                "smallest_classes": self.smallest_classes, "suggestions": self.suggestions}

    def problems(self, max_unique_share: float, min_k: int) -> list[str]:
        """What exceeds the site's thresholds, in words (empty when acceptable)."""
        m = self.measures
        out = []
        if m["records"] and m["unique_share"] > max_unique_share:
            out.append(f"{m['unique_records']} records ({m['unique_share']:.2%}) are unique on "
                       f"{', '.join(self.quasi_identifiers)} (allowed: {max_unique_share:.2%})")
        if m["records"] and min_k > 1 and m["k"] < min_k:
            out.append(f"the smallest group sharing the same {', '.join(self.quasi_identifiers)} has "
                       f"{m['k']} record(s) (required k: {min_k})")
        return out


def report(counter: ClassCounter) -> Report:
    classes = counter.classes()
    qis = counter.qis
    return Report(qis, measures(classes), smallest_classes(classes, qis), suggestions(classes, qis))


def write(rep: Report, folder: Path, stem: str, *, dataset: str = "", verdict: str = "") -> list[Path]:
    """`<stem>.risk.json` and `<stem>.risk.html` in `folder`; returns both paths."""
    data = rep.to_dict() | {"dataset": dataset, "verdict": verdict}
    j = folder / f"{stem}.risk.json"
    j.write_text(json.dumps(data, indent=2, default=str))
    h = folder / f"{stem}.risk.html"
    h.write_text(render_html(rep, dataset=dataset, verdict=verdict))
    return [j, h]


def _pct(x: float) -> str:
    return f"{x:.2%}"


def render_html(rep: Report, *, dataset: str = "", verdict: str = "") -> str:
    e = html.escape
    m = rep.measures
    q = ", ".join(rep.quasi_identifiers)
    rows = [
        ("records", m["records"]), ("equivalence classes", m["classes"]),
        ("k (smallest class)", m["k"]),
        ("unique records", f"{m['unique_records']} ({_pct(m['unique_share'])})"),
        ("records in classes under 5", f"{m['records_in_classes_under_5']} ({_pct(m['share_under_5'])})"),
        ("records in classes under 11", f"{m['records_in_classes_under_11']} ({_pct(m['share_under_11'])})"),
    ]
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Re-identification risk: {e(dataset)}</title>",
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}table{border-collapse:collapse}"
        "td,th{border:1px solid #999;padding:.2em .6em;text-align:left}.bad{color:#a00}</style></head><body>",
        f"<h1>Re-identification risk: {e(dataset)}</h1>",
        f"<p>Quasi-identifiers: <b>{e(q)}</b>. An equivalence class is the records sharing the same values of "
        "all of them; a record alone in its class can be singled out by anyone who knows those facts.</p>",
    ]
    if verdict:
        parts.append(f"<p><b>Verdict:</b> {e(verdict)}</p>")
    parts.append("<table>" + "".join(f"<tr><th>{e(str(a))}</th><td>{e(str(b))}</td></tr>" for a, b in rows) + "</table>")
    if rep.smallest_classes:
        parts.append("<h2>Combinations that single people out most</h2><table><tr>")
        parts.append("".join(f"<th>{e(x)}</th>" for x in rep.quasi_identifiers) + "<th>records</th></tr>")
        for c in rep.smallest_classes:
            parts.append("<tr>" + "".join(f"<td>{e(str(c['values'][x]))}</td>" for x in rep.quasi_identifiers)
                         + f"<td>{c['records']}</td></tr>")
        parts.append("</table>")
    if rep.suggestions:
        parts.append("<h2>What generalising would reach</h2><table><tr><th>change</th><th>k</th>"
                     "<th>unique records</th><th>in classes under 5</th><th>in classes under 11</th></tr>")
        for s in rep.suggestions:
            parts.append(f"<tr><td>{e(s['change'])}</td><td>{s['k']}</td><td>{s['unique_records']} "
                         f"({_pct(s['unique_share'])})</td><td>{_pct(s['share_under_5'])}</td>"
                         f"<td>{_pct(s['share_under_11'])}</td></tr>")
        parts.append("</table>")
    parts.append("</body></html>\n")
    return "\n".join(parts)
