"""Evidence from the project's own data: the enclave holds the records an output was computed from, so
the checks recompute what each cell of a table rests on instead of guessing from the file alone.

For a table submitted in a project with imported datasets (enclave.datasets):

1. **Matching.** Each label column of the table is matched to a dataset column by its values: the
   same values (case and spacing aside), the sex of a person in English or French (`F`, `female`,
   `femme`, `2`...), the year or month of a date, or bands of a numeric column (`0-9`, `10 to 19`,
   `[20,30)`, `<18`, `80+`). The best match covers at least 80% of the column's labels; names only
   break ties. Totals (`Total`, `All`, `Ensemble`...) match every value.
2. **Recomputation.** For each row, from the records whose values fall in its labels: the number of
   records, of distinct persons (the dataset's pseudonym column), and for each numeric column of the
   dataset the sum, mean, median, minimum and maximum, and each person's contribution. A numeric
   column of the table is *recognised* as the statistic that agrees with it on most rows (within the
   rounding it is shown with).
3. **Rules** (each a finding, documented in docs/checks.md):
   - `data_small_cells` (fail): a row shows a value (count, mean, sum, median, percentage...) and
     fewer than `min_cell_count` records or persons are behind its labels;
   - `data_count_mismatch` (fail): a count column says more than the records and persons behind the
     row (a made-up "12" over one record);
   - `data_dominance` (fail): a column recognised as a sum or mean where the largest contributions
     (per person) dominate the cell (the p% and n,k rules of the site's [disclosure] settings);
   - `data_extremes` (fail): a column or a `describe()` row recognised as a minimum or maximum that
     fewer than `min_cell_count` records share: it is one person's value;
   - `records_in_disguise` (fail): rows whose values on 3 or more columns that match the data exactly
     (whatever other columns are added) are shared by fewer than `min_cell_count` records;
   - `data_unmatched` (review when the table shows statistics or magnitudes, else a note): labels
     or rows the data could not explain;
   - `data_evidence` (pass): what matched what, and what was recomputed.

Memory: the table's first EVIDENCE_ROWS rows, and for the matched dataset the columns used (text
dictionary-encoded, pseudonyms as 64-bit hashes): about 10-30 bytes per dataset row. Each dataset
column is read once per request (`ProjectData` keeps what it read), whatever the number of files.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from enclave import datasets as published_datasets
from enclave.fingerprints import hash_column

from egress_review.checks import CELLS_LISTED, Finding, Policy
from egress_review.checks.view import TableView, canon, is_total, shown as _shown

EVIDENCE_ROWS = 100_000  # rows of a table compared with the data (beyond: record-level anyway)
MATCH_SHARE = 0.8  # share of a column's labels the data must explain
AGREE_SHARE = 0.6  # share of rows on which a recomputed statistic must agree to be recognised
MAX_DISTINCT = 200_000  # a column with more distinct values is an identifier, not a label
MAX_MEASURES = 12  # numeric dataset columns tried as the source of a table's statistics
MAX_WILD_ROWS = 500  # total rows recomputed one by one
DISGUISE_COLUMNS = 3

_SEX = {
    "f": "female", "female": "female", "femme": "female", "femmes": "female", "woman": "female",
    "women": "female", "w": "female", "fille": "female", "girl": "female", "feminin": "female",
    "féminin": "female", "2": "female",
    "m": "male", "male": "male", "homme": "male", "hommes": "male", "man": "male", "men": "male",
    "h": "male", "garcon": "male", "garçon": "male", "boy": "male", "masculin": "male", "1": "male",
}
_STAT_WORDS = re.compile(
    r"(^|_)(mean|avg|average|median|sd|std|var|pct|percent|rate|ratio|share|prop|sum|total|min|max|moyenne"
    r"|mediane|taux|part|somme|cost|cout|score|q1|q3|iqr)($|_)")
_BAND = re.compile(
    r"^\s*(?:(?P<lo>-?\d+(?:[.,]\d+)?)\s*(?:-|–|—|to|à|a|\.\.)\s*(?P<hi>-?\d+(?:[.,]\d+)?)"
    r"|[\[(]\s*(?P<lo2>-?\d+(?:\.\d+)?)\s*[,;]\s*(?P<hi2>-?\d+(?:\.\d+)?)\s*(?P<close>[\])])"
    r"|(?P<plus>-?\d+(?:[.,]\d+)?)\s*(?:\+|and over|and more|or more|ou plus|et plus|\+ ans)"
    r"|(?:>=|≥|over|plus de)\s*(?P<ge>-?\d+(?:[.,]\d+)?)"
    r"|(?:<|under|moins de)\s*(?P<lt>-?\d+(?:[.,]\d+)?))\s*(?:ans|years|yrs|y|days|jours|j)?\s*$", re.I)


# --- values ----------------------------------------------------------------------------------------

def _year(v) -> str | None:
    if isinstance(v, (dt.date, dt.datetime)):
        return str(v.year)
    s = canon(v)
    return s[:4] if s and re.match(r"^\d{4}-\d{2}", s) else None


def _month(v) -> str | None:
    if isinstance(v, (dt.date, dt.datetime)):
        return f"{v.year:04d}-{v.month:02d}"
    s = canon(v)
    return s[:7] if s and re.match(r"^\d{4}-\d{2}", s) else None


def _sex(v) -> str | None:
    s = canon(v)
    return _SEX.get(s) if s is not None else None


def _num(s: str) -> float:
    return float(s.replace(",", "."))


def band(label: str) -> tuple[float, float] | None:
    """A band label as [lo, hi): '10-19' (whole numbers: up to 20), '[10,20)', '80+', '<18', '>=65'."""
    m = _BAND.match(label or "")
    if not m:
        return None
    g = m.groupdict()
    if g["lo"] is not None:
        lo, hi = _num(g["lo"]), _num(g["hi"])
        if hi < lo:
            return None
        whole = lo.is_integer() and hi.is_integer()
        return lo, hi + 1 if whole else hi
    if g["lo2"] is not None:
        lo, hi = float(g["lo2"]), float(g["hi2"])
        return (lo, hi + (1e-9 if g["close"] == "]" else 0.0)) if hi >= lo else None
    if g["plus"] is not None:
        return _num(g["plus"]), math.inf
    if g["ge"] is not None:
        return _num(g["ge"]), math.inf
    return -math.inf, _num(g["lt"])


def _tokens(name: str) -> set[str]:
    words = set(re.sub(r"[^0-9a-z]+", " ", str(name).lower()).split())
    return words - {"n", "nb", "of", "de", "the", "group", "groupe", "band", "class", "classe", "tranche", "cat",
                    "mean", "avg", "median", "sum", "total", "min", "max", "pct", "sd", "count", "number"}


def similarity(a: str, b: str) -> float:
    ta, tb = _tokens(a), _tokens(b)
    if not ta or not tb:
        return 0.0
    exact = 1.0 if re.sub(r"[^0-9a-z]", "", a.lower()) == re.sub(r"[^0-9a-z]", "", b.lower()) else 0.0
    return max(exact, len(ta & tb) / len(ta | tb))


# --- the project's data ----------------------------------------------------------------------------

class ProjectData:
    """The project's published datasets, each column read at most once (kept for the request)."""

    def __init__(self, data_dir):
        self.datasets = published_datasets.published(data_dir)
        self._columns: dict[tuple[str, str], pa.Array] = {}
        self._distinct: dict[tuple[str, str], list | None] = {}
        self._schemas: dict[str, pa.Schema] = {}

    def __bool__(self) -> bool:
        return bool(self.datasets)

    def schema(self, ds) -> pa.Schema:
        if ds.name not in self._schemas:
            self._schemas[ds.name] = pq.read_schema(ds.parquet)
        return self._schemas[ds.name]

    def column(self, ds, name: str) -> pa.Array:
        key = (ds.name, name)
        if key not in self._columns:
            t = self.schema(ds).field(name).type
            text = pa.types.is_string(t) or pa.types.is_large_string(t)
            table = pq.read_table(ds.parquet, columns=[name], read_dictionary=[name] if text else None)
            arr = table.column(0).combine_chunks()
            if name in ds.pseudonym_columns:
                arr = pa.array(hash_column(arr))  # one person per value: keep 8 bytes, not the text
            elif not pa.types.is_dictionary(arr.type) and not _numeric(arr.type):
                arr = pc.dictionary_encode(arr)
            self._columns[key] = arr
        return self._columns[key]

    def distinct(self, ds, name: str) -> list | None:
        """The column's distinct values (None when there are too many to be labels)."""
        key = (ds.name, name)
        if key not in self._distinct:
            arr = self.column(ds, name)
            if pa.types.is_dictionary(arr.type):
                values = arr.dictionary
            else:
                values = pc.unique(arr)
            self._distinct[key] = values.to_pylist() if len(values) <= MAX_DISTINCT else None
        return self._distinct[key]

    def numbers(self, ds, name: str) -> np.ndarray:
        arr = self.column(ds, name)
        return pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False)

    def candidates(self, ds) -> list[str]:
        """Columns that may hold labels or measures: every column but the pseudonyms."""
        return [f.name for f in self.schema(ds) if f.name not in ds.pseudonym_columns]


def _numeric(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t) or pa.types.is_boolean(t)


# --- matching a table column to a dataset column ---------------------------------------------------

@dataclass
class Match:
    column: str  # the table's column
    source: str  # the dataset's column
    how: str  # exact / sex / year / month / bands
    coverage: float
    keys: list  # the table column's distinct keys (strings, or (lo, hi) bands)

    def describe(self) -> str:
        words = {"exact": "the same values", "sex": "sex, English or French labels", "year": "the year of a date",
                 "month": "the month of a date", "bands": "bands of the numbers"}
        return f"'{self.column}' = '{self.source}' ({words[self.how]}, {self.coverage:.0%} of labels)"


_TRANSFORMS = {"exact": canon, "sex": _sex, "year": _year, "month": _month}


def match_column(data: ProjectData, ds, column: str, labels: list, exact_only: bool = False,
                 exclude: set[str] = frozenset()) -> Match | None:
    """The dataset column (and transform) that explains most of `labels`, or None below MATCH_SHARE."""
    keys = sorted({k for k in (canon(v) for v in labels if not is_total(v)) if k is not None})
    if not keys:
        return None
    schema = data.schema(ds)
    best: tuple | None = None
    bands = None if exact_only else _bands(keys)
    sexy = sum(1 for k in keys if k in _SEX) >= MATCH_SHARE * len(keys)
    for name in data.candidates(ds):
        if name in exclude:
            continue
        t = schema.field(name).type
        sim = similarity(column, name)
        tries = []
        if bands is not None and _numeric(t):
            tries.append(("bands", _band_coverage(data, ds, name, bands)))
        distinct = None if (bands is not None and _numeric(t) and not exact_only) else data.distinct(ds, name)
        if distinct is not None:
            for how, fn in _TRANSFORMS.items():
                if how == "sex" and (not sexy or exact_only):
                    continue
                if how in ("year", "month") and (exact_only or _numeric(t)):
                    continue
                seen = {fn(v) for v in distinct}
                key_fn = _sex if how == "sex" else (lambda k: k)
                tries.append((how, sum(1 for k in keys if key_fn(k) in seen) / len(keys)))
        for how, cov in tries:
            score = (cov >= MATCH_SHARE, cov + 0.25 * sim, sim)
            if cov >= MATCH_SHARE and (best is None or score > best[0]):
                best = (score, Match(column, name, how, cov, bands if how == "bands" else keys))
    return best[1] if best else None


def _bands(keys: list[str]) -> list[tuple[float, float]] | None:
    """The labels as disjoint bands, when at least MATCH_SHARE of them are bands."""
    parsed = [band(k) for k in keys]
    found = sorted(b for b in parsed if b is not None)
    if len(found) < 2 or len(found) < MATCH_SHARE * len(keys):
        return None
    for (lo1, hi1), (lo2, _) in zip(found, found[1:]):
        if lo2 < hi1:
            return None  # overlapping bands: a band and a total of bands, not one grouping
    return found


def _band_coverage(data: ProjectData, ds, name: str, bands) -> float:
    values = data.numbers(ds, name)
    values = values[~np.isnan(values)]
    if not len(values):
        return 0.0
    lo, hi = float(values.min()), float(values.max())
    inside = sum(1 for a, b in bands if a <= hi and b > lo)
    return inside / len(bands)


def codes_for(data: ProjectData, ds, m: Match) -> np.ndarray:
    """Per dataset row, the index of its key among the table column's keys (-1: none)."""
    if m.how == "bands":
        x = data.numbers(ds, m.source)
        los = np.array([b[0] for b in m.keys])
        his = np.array([b[1] for b in m.keys])
        k = np.searchsorted(los, x, side="right") - 1
        ok = (k >= 0) & ~np.isnan(x)
        k = np.where(ok, k, 0)
        ok &= x < his[k]
        return np.where(ok, k, -1).astype(np.int32)
    arr = data.column(ds, m.source)
    if not pa.types.is_dictionary(arr.type):
        arr = pc.dictionary_encode(arr)
    fn = _TRANSFORMS[m.how]
    index = {(_sex(k) if m.how == "sex" else k): i for i, k in enumerate(m.keys)}
    entry = np.array([index.get(fn(v), -1) for v in arr.dictionary.to_pylist()] + [-1], dtype=np.int32)
    idx = arr.indices.fill_null(len(arr.dictionary)).to_numpy(zero_copy_only=False)
    return entry[idx]


def key_of(m: Match, value) -> int | None:
    """The index of a table cell's label among the match's keys; -2 for a total; None: not explained."""
    if is_total(value):
        return -2
    k = canon(value)
    if k is None:
        return None
    if m.how == "bands":
        b = band(k)
        return m.keys.index(b) if b in m.keys else None
    if m.how == "sex":
        for i, key in enumerate(m.keys):
            if _sex(key) == _sex(k) and _sex(k) is not None:
                return i
        return None
    return m.keys.index(k) if k in m.keys else None


# --- per-row recomputation -------------------------------------------------------------------------

@dataclass
class Groups:
    """What the data says behind each matched row of the table (arrays indexed by table row)."""

    rows: np.ndarray  # table row positions that were matched
    records: np.ndarray
    persons: np.ndarray
    stats: dict = field(default_factory=dict)  # (data column, stat) -> values per matched row
    at_value: dict = field(default_factory=dict)  # (data column, "min"/"max") -> records at that value
    top: dict = field(default_factory=dict)  # data column -> (total, top1, top2) per matched row


def recompute(data: ProjectData, ds, matches: dict[int, Match], keys: dict[int, list], measures: list[str],
              n_rows: int) -> Groups:
    """Records, persons and statistics behind each table row whose labels are all explained."""
    cols = sorted(matches)
    codes = {j: codes_for(data, ds, matches[j]) for j in cols}
    pid = data.column(ds, ds.pseudonym_columns[0]).to_numpy(zero_copy_only=False) if ds.pseudonym_columns else None
    values = {x: data.numbers(ds, x) for x in measures}
    ok_rows = [r for r in range(n_rows) if all(keys[j][r] is not None for j in cols)]
    plain = [r for r in ok_rows if all(keys[j][r] >= 0 for j in cols)]
    wild = [r for r in ok_rows if r not in set(plain)][:MAX_WILD_ROWS]
    rows = np.array(plain + wild, dtype=np.int64)
    out = Groups(rows, np.zeros(len(rows), np.int64), np.zeros(len(rows), np.int64))
    if not len(rows):
        return out
    # the plain rows at once: a mixed-radix code per dataset row, looked up among the rows' codes
    radix = [len(matches[j].keys) for j in cols]
    combined = np.zeros(len(next(iter(codes.values()))), dtype=np.int64)
    valid = np.ones(len(combined), dtype=bool)
    for j, base in zip(cols, radix):
        combined = combined * base + np.maximum(codes[j], 0)
        valid &= codes[j] >= 0
    targets = np.zeros(len(plain), dtype=np.int64)
    for j, base in zip(cols, radix):
        targets = targets * base + np.array([keys[j][r] for r in plain], dtype=np.int64)
    gid = np.full(len(combined), -1, dtype=np.int64)
    if len(plain):
        order = np.argsort(targets, kind="stable")
        pos = np.searchsorted(targets[order], combined)
        pos = np.minimum(pos, len(plain) - 1)
        hit = valid & (targets[order][pos] == combined)
        gid[hit] = order[pos[hit]]
    _fill(out, slice(0, len(plain)), gid, len(plain), pid, values)
    for i, r in enumerate(wild):  # totals: the records of every value of the total's column
        mask = np.ones(len(combined), dtype=bool)
        for j in cols:
            if keys[j][r] >= 0:
                mask &= codes[j] == keys[j][r]
        _fill(out, slice(len(plain) + i, len(plain) + i + 1), np.where(mask, 0, -1), 1, pid, values)
    return out


def _fill(out: Groups, at: slice, gid: np.ndarray, n: int, pid, values: dict) -> None:
    sel = gid >= 0
    g = gid[sel]
    out.records[at] = np.bincount(g, minlength=n)
    if pid is not None:
        p = pid[sel]
        order = np.lexsort((p, g))
        gs, ps = g[order], p[order]
        first = np.ones(len(gs), dtype=bool)
        first[1:] = (gs[1:] != gs[:-1]) | (ps[1:] != ps[:-1])
        out.persons[at] = np.bincount(gs[first], minlength=n)
    else:
        out.persons[at] = out.records[at]
        order = None
    for x, arr in values.items():
        v = arr[sel]
        ok = ~np.isnan(v)
        gv, vv = g[ok], v[ok]
        cnt = np.bincount(gv, minlength=n)
        total = np.bincount(gv, weights=vv, minlength=n)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = total / cnt
        srt = np.lexsort((vv, gv))
        gs, vs = gv[srt], vv[srt]
        start = np.searchsorted(gs, np.arange(n), side="left")
        end = np.searchsorted(gs, np.arange(n), side="right")
        has = end > start
        mn = np.where(has, vs[np.minimum(start, len(vs) - 1)] if len(vs) else np.nan, np.nan)
        mx = np.where(has, vs[np.maximum(end - 1, 0)] if len(vs) else np.nan, np.nan)
        lo_mid = start + (end - start - 1) // 2
        hi_mid = start + (end - start) // 2
        med = np.where(has, (vs[np.minimum(lo_mid, len(vs) - 1)] + vs[np.minimum(hi_mid, len(vs) - 1)]) / 2
                       if len(vs) else np.nan, np.nan)
        for stat, val in (("sum", total), ("mean", mean), ("median", med), ("min", mn), ("max", mx)):
            out.stats.setdefault((x, stat), np.full(len(out.rows), np.nan))[at] = np.where(has, val, np.nan)
        # how many records share the minimum and the maximum (one person's value when few do)
        if len(vs):
            at_min = np.bincount(gs[vs == mn[gs]], minlength=n)
            at_max = np.bincount(gs[vs == mx[gs]], minlength=n)
        else:
            at_min = at_max = np.zeros(n, np.int64)
        out.at_value.setdefault((x, "min"), np.zeros(len(out.rows), np.int64))[at] = at_min
        out.at_value.setdefault((x, "max"), np.zeros(len(out.rows), np.int64))[at] = at_max
        # contributions: per person when persons are known, else per record
        if pid is not None:
            pp = pid[sel][ok]
            o = np.lexsort((pp, gv))
            g2, p2, v2 = gv[o], pp[o], vv[o]
            first = np.ones(len(g2), dtype=bool)
            first[1:] = (g2[1:] != g2[:-1]) | (p2[1:] != p2[:-1])
            starts = np.flatnonzero(first)
            contrib = np.add.reduceat(v2, starts) if len(starts) else np.zeros(0)
            cg = g2[starts]
        else:
            contrib, cg = vv, gv
        o = np.lexsort((-contrib, cg))
        cg, contrib = cg[o], contrib[o]
        s = np.searchsorted(cg, np.arange(n), side="left")
        e = np.searchsorted(cg, np.arange(n), side="right")
        top1 = np.where(e > s, contrib[np.minimum(s, len(contrib) - 1)] if len(contrib) else 0, 0.0)
        top2 = np.where(e > s + 1, contrib[np.minimum(s + 1, len(contrib) - 1)] if len(contrib) else 0, 0.0)
        tops = out.top.setdefault(x, (np.zeros(len(out.rows)), np.zeros(len(out.rows)), np.zeros(len(out.rows)),
                                      np.zeros(len(out.rows), bool)))
        tops[0][at], tops[1][at], tops[2][at] = total, top1, top2
        tops[3][at] = (np.bincount(gv[vv < 0], minlength=n) > 0) if len(vv) else False


# --- the rules -------------------------------------------------------------------------------------

def check(view: TableView, policy: Policy, data: ProjectData, where: str = "") -> list[Finding]:
    if not data or view.n_rows == 0:
        return []
    m = policy.min_cell_count
    out: list[Finding] = []
    best = _best_dataset(view, data)
    if best is None:
        shows = bool(view.measures)
        out.append(Finding(
            "data_unmatched", "review" if shows else "pass",
            f"{where}no label column matches the project's data, so nothing could be recomputed"
            + (": a person must check the statistics" if shows else "")))
        out += _describe_rows(view, data, policy, where)
        out += _disguise(view, policy, data, where)
        return out
    ds, matches = best
    label_idx = {j: view.columns[j] for j in matches}
    keys = {j: [key_of(matches[j], v) for v in view.values[view.columns[j]]] for j in matches}
    measures = _measure_sources(view, data, ds)
    groups = recompute(data, ds, matches, keys, measures, view.n_rows)
    unmatched_labels = [c for c in view.labels if c not in label_idx.values()]
    unmatched_rows = sorted(set(range(view.n_rows)) - set(groups.rows.tolist()))
    rows = groups.rows
    full = not unmatched_labels
    recognised = _recognise(view, groups, full)
    # data_small_cells: any value shown over too few records or persons
    small: list[tuple[str, str]] = []
    n_small = 0
    shown_cols = view.counts + view.measures
    for i, r in enumerate(rows):
        behind = min(groups.records[i], groups.persons[i])
        if 0 < behind < m:
            shown = [c for c in shown_cols if _shown(view.values[c][r])]
            if shown:
                n_small += 1
                small += [(view.row_label(r), view.col_label(c)) for c in shown][: max(0, CELLS_LISTED - len(small))]
    how = "; ".join(matches[j].describe() for j in sorted(matches))
    source = f"dataset '{ds.name}' ({ds.rows:,} records; {how})"
    if n_small:
        out.append(Finding(
            "data_small_cells", "fail",
            f"{where}{n_small:,} row{'s show' if n_small > 1 else ' shows'} values that rest on fewer than {m} records "
            f"or persons in the project's data ({source}"
            + ("" if full else "; the labels not matched only narrow the rows further") + "): whatever the "
            "table says, these cells are about too few people; merge or suppress them", cells=small))
    # data_count_mismatch: a count saying more than the data behind it
    mismatch: list[tuple[str, str]] = []
    for c in view.counts:
        for i, r in enumerate(rows):
            v = view.values[c][r]
            if not _shown(v):
                continue
            most = max(groups.records[i], groups.persons[i])
            if full and v > most + max(5, 0.01 * most) and (most < m or recognised.get(c, (None,))[0] in
                                                             ("records", "persons")):
                mismatch.append((view.row_label(r), view.col_label(c)))
            elif not full and most < m <= v:
                mismatch.append((view.row_label(r), view.col_label(c)))
    if mismatch:
        out.append(Finding(
            "data_count_mismatch", "fail",
            f"{where}{len(mismatch):,} count{'s' if len(mismatch) > 1 else ''} say more than the records behind "
            f"their labels in the project's data ({source}): a count must be what the data says",
            cells=mismatch[:CELLS_LISTED]))
    out += _dominance(view, groups, recognised, policy, where, source)
    out += _extremes(view, groups, recognised, policy, where)
    out += _describe_rows(view, data, policy, where)
    out += _disguise(view, policy, data, where)
    # what could not be explained
    if unmatched_labels or unmatched_rows:
        shows = bool(view.measures)
        parts = []
        if unmatched_labels:
            parts.append(f"label column{'s' if len(unmatched_labels) > 1 else ''} "
                         + ", ".join(f"'{c}'" for c in unmatched_labels)
                         + (" match" if len(unmatched_labels) > 1 else " matches") + " no column of the data")
        if unmatched_rows:
            parts.append(f"{len(unmatched_rows):,} row{'s' if len(unmatched_rows) > 1 else ''} have labels the "
                         "data does not hold")
        out.append(Finding(
            "data_unmatched", "review" if shows else "pass",
            f"{where}{'; '.join(parts)}" + (": the statistics of those cells could not be recomputed, a "
                                            "person must check them" if shows else ""),
            cells=[(view.row_label(r), "(labels)") for r in unmatched_rows[:CELLS_LISTED]]))
    said = ", ".join(f"'{c}' = {what}" for c, (what, share) in recognised.items())
    out.append(Finding(
        "data_evidence", "pass",
        f"{where}compared with {source}: {len(rows):,} of {view.n_rows:,} rows matched"
        + (f"; recomputed {said}" if said else "; no numeric column agreed with a statistic of the data")))
    return out


def match_columns(data: ProjectData, ds, view: TableView, columns: list[str], exact_only: bool = False,
                  min_share: float = MATCH_SHARE) -> dict[int, Match]:
    """The table's columns matched to distinct dataset columns, the best-explained first: a dataset
    column explains one table column (a rank 1..5 does not take 'los_days' from a 'los_days' column)."""
    taken: set[str] = set()
    out: dict[int, Match] = {}
    pending = list(columns)
    while pending:
        found = []
        for c in pending:
            mt = match_column(data, ds, c, view.values[c], exact_only=exact_only, exclude=taken)
            if mt is not None and mt.coverage >= min_share:
                found.append((mt.coverage + 0.25 * similarity(c, mt.source), c, mt))
        if not found:
            break
        _, c, mt = max(found, key=lambda f: f[0])
        out[view.columns.index(c)] = mt
        taken.add(mt.source)
        pending.remove(c)
    return out


def _best_dataset(view: TableView, data: ProjectData):
    best = None
    for ds in data.datasets:
        matches = match_columns(data, ds, view, view.labels)
        if matches:
            score = (len(matches), sum(mt.coverage for mt in matches.values()))
            if best is None or score > best[0]:
                best = (score, ds, matches)
    return (best[1], best[2]) if best else None


def _measure_sources(view: TableView, data: ProjectData, ds) -> list[str]:
    schema = data.schema(ds)
    numeric = [n for n in data.candidates(ds) if _numeric(schema.field(n).type)]
    if not view.measures and not view.counts:
        return []
    ranked = sorted(numeric, key=lambda n: -max([similarity(c, n) for c in view.measures + view.counts] or [0]))
    return ranked[:MAX_MEASURES]


def _decimals(values) -> int:
    d = 0
    for v in values[:1000]:
        if _shown(v) and isinstance(v, float) and not v.is_integer():
            s = repr(v)
            d = max(d, len(s.split(".")[1]) if "." in s and "e" not in s else 6)
    return min(d, 6)


def _recognise(view: TableView, g: Groups, full: bool) -> dict[str, tuple[str, float]]:
    """Which statistic of the data each numeric column shows: (description, share of rows agreeing)."""
    out: dict[str, tuple[str, float]] = {}
    rows = g.rows
    for c in view.counts + view.measures:
        vals = np.array([view.values[c][r] if _shown(view.values[c][r]) else np.nan for r in rows], dtype=float)
        shown = ~np.isnan(vals)
        if not shown.any():
            continue
        tol = 0.5 * 10 ** -_decimals(view.values[c]) + 1e-9
        options = [("records", g.records.astype(float)), ("persons", g.persons.astype(float))]
        if full:
            options += [(f"{stat} of '{x}'", v) for (x, stat), v in g.stats.items()]
        best = None
        for what, v in options:
            close = np.abs(vals - v) <= tol + 1e-6 * np.abs(v)
            share = float(np.sum(close & shown)) / float(shown.sum())
            if share >= AGREE_SHARE and (best is None or share > best[1]):
                best = (what, share)
        if best:
            out[c] = best
    return out


def _dominance(view, g: Groups, recognised, policy: Policy, where: str, source: str) -> list[Finding]:
    out = []
    for c, (what, _) in recognised.items():
        m = re.match(r"^(sum|mean) of '(.+)'$", what)
        if not m or m.group(2) not in g.top:
            continue
        total, top1, top2, negative = g.top[m.group(2)]
        cells = []
        for i, r in enumerate(g.rows):
            if not _shown(view.values[c][r]) or negative[i] or total[i] <= 0:
                continue
            nk = (top1[i] + (top2[i] if policy.nk_n >= 2 else 0)) > policy.nk_k * total[i]
            p = total[i] - top1[i] - top2[i] < policy.p_ratio * top1[i]
            if nk or p:
                cells.append((view.row_label(r), view.col_label(c)))
        if cells:
            out.append(Finding(
                "data_dominance", "fail",
                f"{where}{len(cells):,} cell{'s' if len(cells) > 1 else ''} of '{c}' ({what}, recomputed from "
                f"{source}) are dominated by one or two persons' values (p% {policy.p_ratio:.0%}, n,k "
                f"{policy.nk_n},{policy.nk_k:.0%}): the largest contributor could be estimated",
                cells=cells[:CELLS_LISTED]))
    return out


def _extremes(view, g: Groups, recognised, policy: Policy, where: str) -> list[Finding]:
    out = []
    for c, (what, _) in recognised.items():
        m = re.match(r"^(min|max) of '(.+)'$", what)
        if not m:
            continue
        at = g.at_value.get((m.group(2), m.group(1)))
        cells = [(view.row_label(r), view.col_label(c)) for i, r in enumerate(g.rows)
                 if _shown(view.values[c][r]) and at is not None and 0 < at[i] < policy.min_cell_count]
        if cells:
            out.append(Finding(
                "data_extremes", "fail",
                f"{where}'{c}' is the {'minimum' if m.group(1) == 'min' else 'maximum'} of '{m.group(2)}' in the "
                f"data, and in {len(cells):,} cell{'s' if len(cells) > 1 else ''} fewer than "
                f"{policy.min_cell_count} records have that value: it is one person's value",
                cells=cells[:CELLS_LISTED]))
    return out


_DESCRIBE_ROWS = {"min": "min", "minimum": "min", "max": "max", "maximum": "max"}


def _describe_rows(view: TableView, data: ProjectData, policy: Policy, where: str) -> list[Finding]:
    """A pandas describe() table: rows 'min' and 'max' of columns named like data columns."""
    if not view.columns:
        return []
    first = view.values[view.columns[0]]
    at = {i: _DESCRIBE_ROWS[canon(v)] for i, v in enumerate(first) if canon(v) in _DESCRIBE_ROWS}
    out = []
    for ds in data.datasets if at else []:
        out += _describe_in(view, data, ds, at, policy, where)
    return out[:1]


def _describe_in(view: TableView, data: ProjectData, ds, at: dict, policy: Policy, where: str) -> list[Finding]:
    schema = data.schema(ds)
    numeric = {n.lower(): n for n in data.candidates(ds) if _numeric(schema.field(n).type)}
    cells = []
    for c in view.columns[1:]:
        src = numeric.get(str(c).strip().lower())
        if src is None:
            continue
        x = data.numbers(ds, src)
        for i, stat in at.items():
            v = view.values[c][i]
            if not _shown(v) or not isinstance(v, (int, float)):
                continue
            n = int(np.count_nonzero(np.abs(x - float(v)) <= 1e-9 + 1e-9 * abs(float(v))))
            if 0 < n < policy.min_cell_count:
                cells.append((view.row_label(i), view.col_label(c)))
    if not cells:
        return []
    return [Finding("data_extremes", "fail",
                    f"{where}{len(cells):,} minimum or maximum value{'s' if len(cells) > 1 else ''} of the data "
                    f"(dataset '{ds.name}') that fewer than {policy.min_cell_count} records share: each is one "
                    "person's value", cells=cells[:CELLS_LISTED])]


def _disguise(view: TableView, policy: Policy, data: ProjectData, where: str) -> list[Finding]:
    """Rows that are records whatever else is added: on 3+ columns matching the data exactly, fewer than
    min_cell_count records share the row's values."""
    out = []
    candidates = [c for c in view.columns
                  if c in view.labels or (c not in view.counts and not _STAT_WORDS.search(_norm(c)))
                  or (c in view.counts and _named_in_data(c, data))]
    for ds in data.datasets:
        matches = match_columns(data, ds, view, candidates, exact_only=True, min_share=0.9)
        if len(matches) < DISGUISE_COLUMNS:
            continue
        keys = {j: [key_of(matches[j], v) for v in view.values[view.columns[j]]] for j in matches}
        for j in matches:  # a total is no record
            keys[j] = [None if k == -2 else k for k in keys[j]]
        g = recompute(data, ds, matches, keys, [], view.n_rows)
        rows = [int(r) for i, r in enumerate(g.rows) if 0 < g.records[i] < policy.min_cell_count]
        if rows:
            cols = ", ".join(f"'{matches[j].column}'" for j in sorted(matches))
            out.append(Finding(
                "records_in_disguise", "fail",
                f"{where}{len(rows):,} row{'s' if len(rows) > 1 else ''} match fewer than {policy.min_cell_count} "
                f"records of dataset '{ds.name}' on {len(matches)} columns ({cols}): these rows are records, "
                "whatever other columns say; records never leave the enclave",
                cells=[(view.row_label(r), "(whole row)") for r in rows[:CELLS_LISTED]]))
            break
    return out


def _named_in_data(column: str, data: ProjectData) -> bool:
    n = _norm(column)
    return any(_norm(c) == n for ds in data.datasets for c in data.candidates(ds))


def _norm(name) -> str:
    return re.sub(r"[^0-9a-z]+", "_", str(name).lower()).strip("_")
