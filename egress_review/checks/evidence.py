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

Memory: the table's first rows (tables.SAMPLE_ROWS, 100,000: beyond, a table is record-level anyway), and for the matched dataset the columns used (text
dictionary-encoded, pseudonyms as 64-bit hashes): about 10-30 bytes per dataset row. Each dataset
column is read once per request (`ProjectData` keeps what it read), whatever the number of files.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from enclave import datasets as published_datasets
from enclave.fingerprints import combine, hash_column

from egress_review.checks import CELLS_LISTED, Finding, Policy
from egress_review.checks.view import TableView, canon, is_total
from egress_review.checks.view import shown as _shown

MATCH_SHARE = 0.8  # share of a column's labels the data must explain
AGREE_SHARE = 0.6  # share of rows on which a recomputed statistic must agree to be recognised
MAX_DISTINCT = 200_000  # a column with more distinct values is an identifier, not a label
MAX_MEASURES = 12  # numeric dataset columns tried as the source of a table's statistics
MAX_WILD_ROWS = 500  # total rows recomputed one by one
TRIED_DATASETS = 3  # datasets explaining as many labels, recomputed to see which one the table came from
DISGUISE_COLUMNS = 3
CHUNK_ROWS = 1 << 20  # dataset rows keyed at a time (bounded temporaries)
PSEUDONYM_BATCH = 256 * 1024  # rows hashed at a time (hashing text needs memory per byte of the batch)

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
    """The project's published datasets. What the checks need of a column is read once per request
    and kept: its distinct values and range (small) for matching, the whole column (compact: text
    dictionary-encoded, pseudonyms as 64-bit hashes) only for the columns a table is recomputed on."""

    def __init__(self, data_dir):
        self._columns: dict[tuple[str, str], pa.Array] = {}
        self._distinct: dict[tuple[str, str], list | None] = {}
        self._range: dict[tuple[str, str], tuple[float, float] | None] = {}
        self._keys: dict[tuple[str, str, str], set] = {}
        self._schemas: dict[str, pa.Schema] = {}
        self.datasets = []
        self.unreadable: list[str] = []  # "name (why)": published, but not a Parquet file we can read
        for ds in published_datasets.published(data_dir):
            try:
                self._schemas[ds.name] = pq.read_schema(ds.parquet)
                self.datasets.append(ds)
            except (OSError, pa.ArrowException) as exc:
                self.unreadable.append(f"{ds.name} ({str(exc)[:120]})")

    def __bool__(self) -> bool:
        return bool(self.datasets or self.unreadable)

    def schema(self, ds) -> pa.Schema:
        if ds.name not in self._schemas:
            self._schemas[ds.name] = pq.read_schema(ds.parquet)
        return self._schemas[ds.name]

    def _read(self, ds, name: str) -> pa.Array:
        if name in self._columns_of(ds):
            return self._columns[(ds.name, name)]
        t = self.schema(ds).field(name).type
        text = pa.types.is_string(t) or pa.types.is_large_string(t)
        arr = pq.read_table(ds.parquet, columns=[name], read_dictionary=[name] if text else None).column(0)
        arr = arr.combine_chunks()
        if not pa.types.is_dictionary(arr.type) and not _numeric(arr.type):
            arr = pc.dictionary_encode(arr)
        return arr

    def _columns_of(self, ds) -> set[str]:
        return {c for d, c in self._columns if d == ds.name}

    def column(self, ds, name: str) -> pa.Array:
        key = (ds.name, name)
        if key not in self._columns:
            if name in ds.pseudonym_columns:  # one person per value: 8 bytes each, hashed batch by batch
                source = pq.ParquetFile(ds.parquet)
                hashes = np.empty(source.metadata.num_rows, dtype=np.uint64)
                at = 0
                for batch in source.iter_batches(batch_size=PSEUDONYM_BATCH, columns=[name]):
                    hashes[at:at + batch.num_rows] = hash_column(batch.column(0))
                    at += batch.num_rows
                self._columns[key] = pa.array(hashes[:at])
            else:
                self._columns[key] = _compact(self._read(ds, name))
            _give_back()
        return self._columns[key]

    def _profile(self, ds, name: str) -> None:
        """Distinct values and range from one read of the column, which is not kept."""
        key = (ds.name, name)
        arr = self._read(ds, name)
        values = arr.dictionary if pa.types.is_dictionary(arr.type) else pc.unique(arr)
        self._distinct[key] = values.to_pylist() if len(values) <= MAX_DISTINCT else None
        self._range[key] = None
        if _numeric(arr.type) and not pa.types.is_boolean(arr.type):
            mm = pc.min_max(arr).as_py()
            if mm["min"] is not None:
                self._range[key] = (float(mm["min"]), float(mm["max"]))
        del arr, values
        _give_back()  # the column is not kept

    def distinct(self, ds, name: str) -> list | None:
        """The column's distinct values (None when there are too many to be labels)."""
        if (ds.name, name) not in self._distinct:
            self._profile(ds, name)
        return self._distinct[(ds.name, name)]

    def keys(self, ds, name: str, how: str) -> set:
        """The column's distinct values as keys of one transform (exact, sex, year, month), kept:
        every label column of every table of the request is compared with them."""
        key = (ds.name, name, how)
        if key not in self._keys:
            self._keys[key] = {_TRANSFORMS[how](v) for v in self.distinct(ds, name) or ()}
        return self._keys[key]

    def value_range(self, ds, name: str) -> tuple[float, float] | None:
        if (ds.name, name) not in self._range:
            self._profile(ds, name)
        return self._range[(ds.name, name)]

    def numbers(self, ds, name: str) -> np.ndarray:
        arr = self.column(ds, name)
        return pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False)

    def pseudonyms(self, ds) -> list[str]:
        """The manifest's pseudonym columns that the file really has."""
        return [c for c in ds.pseudonym_columns if c in self.schema(ds).names]

    def candidates(self, ds) -> list[str]:
        """Columns that may hold labels or measures: numbers, text, dates and booleans, but not the
        pseudonyms (nested or binary columns label nothing)."""
        return [f.name for f in self.schema(ds) if f.name not in ds.pseudonym_columns and _plain(f.type)]


def _give_back() -> None:
    """Return freed Arrow memory to the system: the allocator keeps it otherwise, and reading columns
    of 10 million rows one after the other would add up in the process's footprint."""
    pa.default_memory_pool().release_unused()


def _compact(arr: pa.Array) -> pa.Array:
    """The same values in fewer bytes: small whole numbers as int16/int32, dictionary indices likewise."""
    if pa.types.is_dictionary(arr.type):
        n = len(arr.dictionary)
        index = pa.int16() if n < 2**15 else pa.int32()
        if arr.type.index_type != index:
            arr = arr.cast(pa.dictionary(index, arr.type.value_type))
        return arr
    if pa.types.is_integer(arr.type) and len(arr):
        mm = pc.min_max(arr).as_py()
        if mm["min"] is not None:
            for t, lo, hi in ((pa.int16(), -2**15, 2**15 - 1), (pa.int32(), -2**31, 2**31 - 1)):
                if lo <= mm["min"] and mm["max"] <= hi and arr.type.bit_width > t.bit_width:
                    return arr.cast(t)
    return arr


def _plain(t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t):
        t = t.value_type
    return (_numeric(t) or pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_date(t)
            or pa.types.is_timestamp(t))


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
                if how == "sex" and not sexy:
                    continue  # (a relabelling, not a coarsening: kept when only exact values count)
                if how in ("year", "month") and (exact_only or _numeric(t)):
                    continue
                seen = data.keys(ds, name, how)
                key_fn = _sex if how == "sex" else (lambda k: k)
                tries.append((how, sum(1 for k in keys if key_fn(k) in seen) / len(keys)))
        for how, cov in tries:
            if len(keys) < 2 and sim == 0:
                continue  # one label value matches too much by chance: its name must agree too
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
    span = data.value_range(ds, name)
    if span is None:
        return 0.0
    lo, hi = span
    inside = sum(1 for a, b in bands if a <= hi and b > lo)
    return inside / len(bands)


def codes_for(data: ProjectData, ds, m: Match) -> np.ndarray:
    """Per dataset row, the index of its key among the table column's keys (-1: none)."""
    dtype = np.int16 if len(m.keys) < 2**15 else np.int32
    if m.how == "bands":
        column = data.column(ds, m.source)
        los = np.array([b[0] for b in m.keys])
        his = np.array([b[1] for b in m.keys])
        out = np.empty(len(column), dtype=dtype)
        for start in range(0, len(column), CHUNK_ROWS):  # in chunks: float copies of a slice only
            x = pc.cast(column.slice(start, CHUNK_ROWS), pa.float64()).to_numpy(zero_copy_only=False)
            k = np.searchsorted(los, x, side="right") - 1
            ok = (k >= 0) & ~np.isnan(x)
            k = np.where(ok, k, 0)
            ok &= x < his[k]
            out[start:start + len(x)] = np.where(ok, k, -1)
        return out
    arr = data.column(ds, m.source)
    fn = _TRANSFORMS[m.how]
    index = {(_sex(k) if m.how == "sex" else k): i for i, k in enumerate(m.keys)}
    span = data.value_range(ds, m.source) if pa.types.is_integer(arr.type) else None
    if span is not None and span[1] - span[0] <= 1_000_000:  # whole numbers: a lookup by value
        lo = int(span[0])
        entry = np.array([index.get(fn(v), -1) for v in range(lo, int(span[1]) + 1)] + [-1], dtype=dtype)
        values = arr.fill_null(int(span[1]) + 1).to_numpy(zero_copy_only=False)
        return entry[values - lo]
    if not pa.types.is_dictionary(arr.type):
        arr = pc.dictionary_encode(arr)
    entry = np.array([index.get(fn(v), -1) for v in arr.dictionary.to_pylist()] + [-1], dtype=dtype)
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

class Groups:
    """What the data says behind each matched row of the table (arrays indexed like `rows`).

    Records, persons and each measure's sum, mean, median, minimum and maximum are computed at once;
    what only some statistics need (each person's contribution, for sums and means; how many records
    share a minimum or maximum) is computed on demand, for the columns recognised as such."""

    def __init__(self, rows: np.ndarray):
        self.rows = rows
        self.records = np.zeros(len(rows), np.int64)
        self.persons = np.zeros(len(rows), np.int64)
        self.stats: dict = {}  # (data column, stat) -> values per row
        self._parts: list = []  # (slice of rows, gid over the dataset, number of groups)
        self._pid = None
        self._measure: dict = {}
        self._top: dict = {}
        self._at: dict = {}

    def top(self, x: str):
        """(total, largest, second largest contribution, any negative value) per row: contributions of
        persons when the dataset has a pseudonym column, else of records."""
        if x not in self._top:
            n = len(self.rows)
            total, top1, top2, negative = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n, bool)
            for at, gid, k in self._parts:
                sel = gid >= 0
                g = gid[sel]
                v = _numbers(self._measure[x], sel)
                ok = ~np.isnan(v)
                if not ok.all():
                    g, v = g[ok], v[ok]
                negative[at] = np.bincount(g[v < 0], minlength=k) > 0
                total[at] = np.bincount(g, weights=v, minlength=k)
                if self._pid is None:
                    top1[at], top2[at] = _two_largest(g, v, k)
                    continue
                # each person's records summed (persons contribute, not stays), a share of the persons
                # at a time: a person is in one share, so the shares' two largest merge exactly
                pid = self._pid[sel][ok] if not ok.all() else self._pid[sel]
                best = np.zeros((2, k))
                for _, mask in _person_shares(pid):
                    key = _person_keys(g[mask], pid[mask])
                    order = np.argsort(key, kind="stable")
                    key = key[order]
                    first = np.ones(len(key), dtype=bool)
                    first[1:] = key[1:] != key[:-1]
                    starts = np.flatnonzero(first)
                    sums = np.add.reduceat(v[mask][order], starts) if len(starts) else np.zeros(0)
                    groups = (key[starts] >> np.uint64(_PERSON_BITS)).astype(np.int64)
                    del key, order, first, starts
                    t1, t2 = _two_largest(groups, sums, k)
                    best = np.sort(np.vstack([best, t1, t2]), axis=0)[-2:]
                top2[at], top1[at] = best[0], best[1]
            self._top[x] = (total, top1, top2, negative)
        return self._top[x]

    def at_value(self, x: str, stat: str) -> np.ndarray:
        """How many records of each row's group hold its minimum (or maximum) of `x`."""
        if (x, stat) not in self._at:
            n = len(self.rows)
            out = np.zeros(n, np.int64)
            for at, gid, k in self._parts:
                sel = gid >= 0
                g = gid[sel]
                v = _numbers(self._measure[x], sel)
                target = self.stats[(x, stat)][at]
                hit = v == np.nan_to_num(target, nan=np.inf)[g]
                out[at] = np.bincount(g[hit], minlength=k)
            self._at[(x, stat)] = out
        return self._at[(x, stat)]


_PERSON_BITS = 40  # a group number above a person's hash (its 40 top bits: collisions ~1 in a million)


def _person_keys(g: np.ndarray, pid: np.ndarray) -> np.ndarray:
    return (g.astype(np.uint64) << np.uint64(_PERSON_BITS)) | (pid >> np.uint64(64 - _PERSON_BITS))


def _person_shares(pid: np.ndarray):
    """Masks splitting records by person into shares of about CHUNK_ROWS records (bounded memory)."""
    shares = max(1, -(-len(pid) // CHUNK_ROWS))
    if shares == 1:
        yield 0, np.ones(len(pid), dtype=bool)
        return
    part = pid % np.uint64(shares)
    for share in range(shares):
        yield share, part == share


def _numbers(column: pa.Array, sel: np.ndarray) -> np.ndarray:
    return pc.cast(column.filter(pa.array(sel)), pa.float64()).to_numpy(zero_copy_only=False)


def _two_largest(g: np.ndarray, v: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The largest and second largest value of each group (0 when there is none), without sorting."""
    top1 = np.full(k, -np.inf)
    np.maximum.at(top1, g, v)
    is_top = v == top1[g]
    ties = np.bincount(g[is_top], minlength=k)
    second = np.full(k, -np.inf)
    rest = ~is_top
    np.maximum.at(second, g[rest], v[rest])
    top2 = np.where(ties >= 2, top1, second)
    return np.where(np.isfinite(top1), top1, 0.0), np.where(np.isfinite(top2), top2, 0.0)


def _row_keys(columns: list[np.ndarray], radix: list[int]) -> np.ndarray:
    """One int64 per row for a combination of label codes: mixed radix when it fits, else a hash."""
    if math.prod(radix) < 2**62:
        out = np.zeros(len(columns[0]), dtype=np.int64)
        for codes, base in zip(columns, radix):
            out *= base
            out += np.maximum(codes, 0)
        return out
    return combine([np.asarray(c, dtype=np.int64).view(np.uint64) for c in columns]).view(np.int64)


def recompute(data: ProjectData, ds, matches: dict[int, Match], keys: dict[int, list], measures: list[str],
              n_rows: int) -> Groups:
    """Records, persons and statistics behind each table row whose labels are all explained."""
    cols = sorted(matches)
    ok_rows = [r for r in range(n_rows) if all(keys[j][r] is not None for j in cols)]
    plain = [r for r in ok_rows if all(keys[j][r] >= 0 for j in cols)]
    is_plain = set(plain)
    wild = [r for r in ok_rows if r not in is_plain][:MAX_WILD_ROWS]
    out = Groups(np.array(plain + wild, dtype=np.int64))
    if not len(out.rows):
        return out
    codes = {}
    for j in cols:
        codes[j] = codes_for(data, ds, matches[j])
        _give_back()
    pseudonyms = data.pseudonyms(ds)
    out._pid = data.column(ds, pseudonyms[0]).to_numpy(zero_copy_only=False) if pseudonyms else None
    out._measure = {x: data.column(ds, x) for x in measures}
    # the plain rows at once: a key per dataset row, looked up among the rows' keys
    radix = [len(matches[j].keys) for j in cols]
    size = len(codes[cols[0]])
    if plain:
        gid = np.full(size, -1, dtype=np.int32)
        targets = _row_keys([np.array([keys[j][r] for r in plain], dtype=np.int64) for j in cols], radix)
        order = np.argsort(targets, kind="stable")
        ordered = targets[order]
        for start in range(0, size, CHUNK_ROWS):
            end = start + CHUNK_ROWS
            combined = _row_keys([codes[j][start:end] for j in cols], radix)
            valid = np.ones(len(combined), dtype=bool)
            for j in cols:
                valid &= codes[j][start:end] >= 0
            pos = np.minimum(np.searchsorted(ordered, combined), len(plain) - 1)
            hit = valid & (ordered[pos] == combined)
            gid[start:end][hit] = order[pos[hit]]
        out._parts.append((slice(0, len(plain)), gid, len(plain)))
    for i, r in enumerate(wild):  # totals: the records of every value of the total's column
        mask = np.ones(size, dtype=bool)
        for j in cols:
            if keys[j][r] >= 0:
                mask &= codes[j] == keys[j][r]
        out._parts.append((slice(len(plain) + i, len(plain) + i + 1), np.where(mask, 0, -1).astype(np.int8), 1))
    del codes
    for at, gid, k in out._parts:
        _fill(out, at, gid, k)
    return out


def _at(values: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """values[positions], NaN where there are no values at all (groups without records are masked later)."""
    if not len(values):
        return np.full(len(positions), np.nan)
    return values[np.clip(positions, 0, len(values) - 1)]


def _fill(out: Groups, at: slice, gid: np.ndarray, n: int) -> None:
    sel = gid >= 0
    g = gid[sel].astype(np.int32)  # arrays over every matched record: kept as small as they can be
    out.records[at] = np.bincount(g, minlength=n)
    if out._pid is not None:
        pid = out._pid[sel]
        persons = np.zeros(n, np.int64)
        for _, mask in _person_shares(pid):  # distinct persons add up over shares of persons
            key = _person_keys(g[mask], pid[mask])
            key.sort()
            first = np.ones(len(key), dtype=bool)
            first[1:] = key[1:] != key[:-1]
            persons += np.bincount((key[first] >> np.uint64(_PERSON_BITS)).astype(np.int64), minlength=n)
            del key, first
        out.persons[at] = persons
        del pid
    else:
        out.persons[at] = out.records[at]
    for x, column in out._measure.items():
        vv = _numbers(column, sel)
        ok = ~np.isnan(vv)
        gv = g
        if not ok.all():
            gv, vv = g[ok], vv[ok]
        del ok
        cnt = np.bincount(gv, minlength=n)
        total = np.bincount(gv, weights=vv, minlength=n)
        has = cnt > 0
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = total / cnt
        order = np.lexsort((vv, gv))  # by group, then value: minimum, median and maximum by position
        gs = gv[order]
        del gv
        vs = vv[order]
        del order, vv
        start = np.searchsorted(gs, np.arange(n), side="left")
        end = np.searchsorted(gs, np.arange(n), side="right")
        mn, mx = _at(vs, start), _at(vs, end - 1)
        med = (_at(vs, start + (end - start - 1) // 2) + _at(vs, start + (end - start) // 2)) / 2
        del gs, vs
        for stat, val in (("sum", total), ("mean", mean), ("median", med), ("min", mn), ("max", mx)):
            out.stats.setdefault((x, stat), np.full(len(out.rows), np.nan))[at] = np.where(has, val, np.nan)


# --- the rules -------------------------------------------------------------------------------------

def check(view: TableView, policy: Policy, data: ProjectData, where: str = "") -> list[Finding]:
    if not data or view.n_rows == 0:
        return []
    _give_back()  # what reading the file held: the data needs the room
    m = policy.min_cell_count
    out: list[Finding] = []
    if data.unreadable:
        out.append(Finding("data_unmatched", "review",
                           f"{where}the project's dataset{'s' if len(data.unreadable) > 1 else ''} "
                           + ", ".join(data.unreadable) + " could not be read: a person must check the cells "
                           "against the data"))
    if not data.datasets:
        return out
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
    ds, matches, groups, recognised = best
    label_idx = {j: view.columns[j] for j in matches}
    unmatched_labels = [c for c in view.labels if c not in label_idx.values()]
    unmatched_rows = sorted(set(range(view.n_rows)) - set(groups.rows.tolist()))
    rows = groups.rows
    full = not unmatched_labels
    view.recognised.update({c: what for c, (what, _) in recognised.items()})
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
            if full and v - most >= _slack(v, most) and (most < m or recognised.get(c, (None,))[0] in
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


def _slack(shown: float, behind: int) -> float:
    """How much more than the data a count may say and still be the data's count, rounded or perturbed:
    under 10 for a multiple of 10 (random rounding to base 10), under 5 otherwise (base 5, small noise),
    and 1% of large counts."""
    base = 10 if shown % 10 == 0 else 5
    return max(base, 0.01 * behind + 1e-9)


def _best_dataset(view: TableView, data: ProjectData):
    """The dataset the table was computed from: the one explaining most label columns; among those
    (up to TRIED_DATASETS), the one whose recomputed statistics agree with the table's numbers most.
    Returns (dataset, matches, groups, recognised) or None."""
    scored = []
    for ds in data.datasets:
        matches = match_columns(data, ds, view, view.labels)
        if matches:
            scored.append(((len(matches), sum(mt.coverage for mt in matches.values())), ds, matches))
    if not scored:
        return None
    scored.sort(key=lambda x: x[0], reverse=True)
    best = None
    for score, ds, matches in [x for x in scored if x[0][0] == scored[0][0][0]][:TRIED_DATASETS]:
        keys = {j: [key_of(matches[j], v) for v in view.values[view.columns[j]]] for j in matches}
        measures = _measure_sources(view, data, ds, {mt.source for mt in matches.values()})
        groups = recompute(data, ds, matches, keys, measures, view.n_rows)
        full = len(matches) == len(view.labels)
        recognised = _recognise(view, groups, full)
        fit = (len(groups.rows), sum(share for _, share in recognised.values()), score[1])
        if best is None or fit > best[0]:
            best = (fit, ds, matches, groups, recognised)
    return best[1:]


def _measure_sources(view: TableView, data: ProjectData, ds, labels: set[str]) -> list[str]:
    """Numeric dataset columns that may be what the table's numbers summarise (not its labels'
    columns), the most alike by name first: any, when the table shows statistics; only those named
    like one of its columns when it shows counts (a whole-number 'total_cost' is a sum of 'cost')."""
    schema = data.schema(ds)
    numeric = [n for n in data.candidates(ds) if _numeric(schema.field(n).type) and n not in labels]
    shown = view.measures + view.counts

    def alike(n: str) -> float:
        return max([similarity(c, n) for c in shown] or [0.0])

    ranked = sorted(numeric, key=lambda n: -alike(n))
    if not view.measures:
        ranked = [n for n in ranked if alike(n) > 0]
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
            score = (share, _named_as(c, what))  # a tie goes to the statistic the column is named after
            if share >= AGREE_SHARE and (best is None or score > best[0]):
                best = (score, what)
        if best:
            out[c] = (best[1], best[0][0])
    return out


_STAT_SYNONYMS = {"mean": "mean|avg|average|moyenne|moy", "sum": "sum|total|somme", "median": "median|mediane|med",
                  "min": "min|minimum|mini", "max": "max|maximum|maxi", "records": "n|count|nb|stays|records|effectif",
                  "persons": "persons|patients|people|individuals|personnes"}


def _named_as(column: str, what: str) -> bool:
    stat = what.split(" ", 1)[0]
    words = _STAT_SYNONYMS.get(stat)
    return bool(words and re.search(rf"(^|_)({words})($|_)", _norm(column)))


def _dominance(view, g: Groups, recognised, policy: Policy, where: str, source: str) -> list[Finding]:
    out = []
    for c, (what, _) in recognised.items():
        m = re.match(r"^(sum|mean) of '(.+)'$", what)
        if not m or (m.group(2), "sum") not in g.stats:
            continue
        total, top1, top2, negative = g.top(m.group(2))
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
        at = g.at_value(m.group(2), m.group(1)) if (m.group(2), m.group(1)) in g.stats else None
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
    summary = {c for c, what in view.recognised.items() if not re.match(r"(min|max) of ", what)}
    candidates = [c for c in view.columns if c not in summary and (
        c in view.labels or (c not in view.counts and not _STAT_WORDS.search(_norm(c)))
        or (c in view.counts and _named_in_data(c, data)))]  # record values, not what sums them up
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
