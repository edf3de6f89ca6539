"""Compact fingerprints of a project's imported rows, so the egress checks can see row-level copies.

For each imported dataset we keep, under ``enclave.paths.fingerprints(state_dir, project)``:

- ``<dataset>.json``: the dataset's column names (normalised: stripped, lower case), which of them
  hold pseudonyms, and counts;
- ``<dataset>.rows.npy``: sorted, unique 64-bit hashes of every imported row (all columns);
- ``<dataset>.rest.npy`` (datasets with pseudonym columns): the same over every column but those;
- ``<dataset>.id.<n>.npy``: sorted, unique 64-bit hashes of the values of pseudonym column n.

Values are normalised before hashing so that a row survives a round trip through pandas, CSV or
Parquet: every number (integer, float, decimal, boolean) as a float64 (so 3, 3.0 and True==1 agree),
NaN and null alike, text trimmed with the empty string counted as missing, dates and timestamps as
text ('2020-01-31', or '2020-01-31 10:15:00' when there is a time of day, as pandas
writes it; fractions of a second are ignored; any text ending in ' 00:00:00' loses that ending, since
pandas writes a midnight as '2020-01-31 00:00:00' when another value in the column has a time).

Matching rule of :func:`find_input_rows` (documented in docs/ingest.md):

1. *whole rows*: when an output has every column of a dataset (by normalised name, in any order, with
   any extra columns), an output row whose values on those columns equal an imported row is reported;
   the same on every column but the pseudonym columns, when the output has those (an extract with
   the id dropped or replaced);
   both only when at least MIN_ROW_COLUMNS (3) columns are compared, because a row of 1 or 2 values
   (ward, sex) is also the label of an aggregate;
2. *pseudonyms*: when an output has a column that held pseudonyms in a dataset, an output row whose
   value there is one of that dataset's pseudonyms is reported (a pseudonym is one person's record).

An output with only some of a dataset's other columns and no pseudonym column is not matched: with
64-bit row hashes there is nothing to compare a subset against. The hashes are not keyed; they stay
in state_dir, which no container sees.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from enclave import paths

FORMAT = 2
MIN_ROW_COLUMNS = 3
_NULL = np.uint64(0x9E3779B97F4A7C15)
_TAG_NUM = np.uint64(0x243F6A8885A308D3)
_TAG_STR = np.uint64(0x13198A2E03707344)
_TAG_BIG = np.uint64(0xA4093822299F31D0)
_ROW_MUL = np.uint64(0x100000001B3)
_LEN_MUL = np.uint64(0xC2B2AE3D27D4EB4F)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_POLY = np.uint64(0x9FB21C651E98DF25)  # odd, so invertible modulo 2**64
_POLY_INV = np.uint64(pow(0x9FB21C651E98DF25, -1, 2**64))
_powers = np.ones(1, dtype=np.uint64)
_inverse_powers = np.ones(1, dtype=np.uint64)
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")


def normalise_name(name: object) -> str:
    return str(name).strip().lower()


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: spreads every input bit over the 64 output bits."""
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    return x ^ (x >> np.uint64(31))


def _powers_upto(n: int) -> tuple[np.ndarray, np.ndarray]:
    """POLY**i and POLY**-i modulo 2**64 for i < n (grown on demand, kept between calls)."""
    global _powers, _inverse_powers
    if n > len(_powers):
        size = max(n, 2 * len(_powers), 1 << 22)
        with np.errstate(over="ignore"):
            _powers = np.cumprod(np.full(size, _POLY, dtype=np.uint64)) * _POLY_INV
            _inverse_powers = np.cumprod(np.full(size, _POLY_INV, dtype=np.uint64)) * _POLY
    return _powers[:n], _inverse_powers[:n]


def _hash_numbers(arr: pa.Array) -> np.ndarray:
    values = pc.cast(arr, pa.float64(), safe=False)
    f = values.to_numpy(zero_copy_only=False).astype(np.float64, copy=True)
    missing = np.isnan(f)
    f[f == 0] = 0.0  # -0.0 and 0.0 alike
    h = _mix(f.view(np.uint64) ^ _TAG_NUM)
    if pa.types.is_integer(arr.type):  # beyond 2**53 a float64 is not exact: hash those integers as such
        big = np.abs(f) > 2.0**53
        if big.any():
            ints = pc.fill_null(pc.cast(arr, pa.int64(), safe=False), 0).to_numpy(zero_copy_only=False)
            h[big] = _mix(ints[big].view(np.uint64) ^ _TAG_BIG)
    h[missing] = _NULL
    return h


def _hash_text(arr: pa.Array) -> np.ndarray:
    """Hash each UTF-8 value from the Arrow buffers, without making Python strings."""
    arr = pc.utf8_trim_whitespace(pc.cast(arr, pa.large_string()))
    arr = pc.if_else(pc.equal(arr, ""), pa.scalar(None, pa.large_string()), arr)
    midnight = pc.ends_with(arr, " 00:00:00")  # pandas writes dates so when another value has a time
    if pc.any(midnight).as_py():
        arr = pc.if_else(midnight, pc.utf8_slice_codeunits(arr, 0, -9), arr)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    n = len(arr)
    out = np.empty(n, dtype=np.uint64)
    if n == 0:
        return out
    _, offs_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(offs_buf, dtype=np.int64)[arr.offset: arr.offset + n + 1]
    start, end = int(offsets[0]), int(offsets[-1])
    data = np.frombuffer(data_buf, dtype=np.uint8)[start:end] if data_buf is not None else np.empty(0, np.uint8)
    lengths = np.diff(offsets)
    starts = offsets[:-1] - start
    sums = np.zeros(n, dtype=np.uint64)
    if len(data):
        # polynomial hash of each string: sum of byte * POLY**(absolute position), brought back to
        # the string's own start by POLY**-start; no per-byte gather needed
        pw, inv = _powers_upto(len(data))
        contrib = data * pw
        nonempty = lengths > 0
        sums[nonempty] = np.add.reduceat(contrib, starts[nonempty]) * inv[starts[nonempty]]
    out = _mix(sums ^ (lengths.astype(np.uint64) * _LEN_MUL) ^ _TAG_STR)
    valid = arr.is_valid().to_numpy(zero_copy_only=False)
    out[~valid] = _NULL
    return out


def _temporal_text(arr: pa.Array) -> pa.Array:
    """Dates as 'YYYY-MM-DD'; timestamps (UTC, whole seconds) as 'YYYY-MM-DD HH:MM:SS', or the date at midnight.

    Casts rather than strftime: strftime is 30 times slower in Arrow.
    """
    if pa.types.is_date(arr.type) or pa.types.is_time(arr.type) or pa.types.is_duration(arr.type):
        return pc.cast(arr, pa.string())
    return pc.cast(pc.cast(arr, pa.timestamp("s"), safe=False), pa.string())  # midnight: see _hash_text


def _sorted_unique(a: np.ndarray) -> np.ndarray:
    """np.unique, but by sorting: numpy's hash-based unique is far slower on random 64-bit values."""
    s = np.sort(a)
    if len(s) < 2:
        return s
    keep = np.empty(len(s), dtype=bool)
    keep[0] = True
    np.not_equal(s[1:], s[:-1], out=keep[1:])
    return s[keep]


def _few_distinct(arr: pa.Array, sample: int = 8192) -> bool:
    """Whether a text column repeats its values (judged on its first values; only a speed choice:
    dictionary-encoding first is faster unless nearly every value is different)."""
    if len(arr) < 2 * sample:
        return False
    return len(pc.unique(arr.slice(0, sample))) < 0.8 * sample


def _via_dictionary(arr: pa.Array, hash_values) -> np.ndarray:
    enc = pc.dictionary_encode(arr, null_encoding="encode")
    return hash_values(enc.dictionary)[enc.indices.to_numpy(zero_copy_only=False)]


def hash_column(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """One 64-bit hash per value, equal for values that are equal after normalisation."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    t = arr.type
    if pa.types.is_dictionary(t):
        arr = arr.cast(t.value_type)
        t = arr.type
    if pa.types.is_null(t):
        return np.full(len(arr), _NULL, dtype=np.uint64)
    if pa.types.is_boolean(t):
        return _hash_numbers(pc.cast(arr, pa.int8()))
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        return _hash_numbers(arr)
    if pa.types.is_temporal(t):  # few distinct days per batch: format each once
        return _via_dictionary(arr, lambda d: _hash_text(_temporal_text(d)))
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return _via_dictionary(arr, _hash_text) if _few_distinct(arr) else _hash_text(arr)
    try:
        return _hash_text(pc.cast(arr, pa.string()))
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
        return _hash_text(pa.array([None if v is None else str(v) for v in arr.to_pylist()], pa.string()))


def combine(column_hashes: list[np.ndarray]) -> np.ndarray:
    """One hash per row from per-column hashes, in the order given."""
    if not column_hashes:
        raise ValueError("no columns to fingerprint")
    h = column_hashes[0]
    with np.errstate(over="ignore"):
        for col in column_hashes[1:]:
            h = _mix(h * _ROW_MUL ^ col)
    return h


def _row_hashes(hashed: dict[str, np.ndarray], id_columns: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
    """(all columns, all but the pseudonym columns) row hashes from column hashes by normalised name.

    With pseudonym columns the whole-row hash is built on the other columns' hash, so both cost one pass."""
    ids = sorted(c for c in hashed if c in id_columns)
    rest_names = sorted(c for c in hashed if c not in id_columns)
    if not ids:
        return combine([hashed[n] for n in rest_names]), None
    if not rest_names:
        return combine([hashed[n] for n in ids]), None
    rest = combine([hashed[n] for n in rest_names])
    return combine([rest] + [hashed[n] for n in ids]), rest


def _safe(name: str) -> str:
    if not _SAFE_NAME.match(name):
        raise ValueError(f"dataset name {name!r} cannot name a fingerprint file")
    return name


class FingerprintWriter:
    """Collects hashes batch by batch during an import, then writes them into a staging folder."""

    def __init__(self, dataset: str, columns: list[str], id_columns: Iterable[str]):
        self.dataset = _safe(dataset)
        self.columns = [normalise_name(c) for c in columns]
        if len(set(self.columns)) != len(self.columns):
            raise ValueError("column names must stay distinct after normalisation")
        self.id_columns = [normalise_name(c) for c in id_columns]
        self._rows: list[np.ndarray] = []
        self._rest: list[np.ndarray] = []
        self._ids: dict[str, list[np.ndarray]] = {c: [] for c in self.id_columns}
        self.rows = 0

    def add(self, batch: pa.RecordBatch) -> dict[str, np.ndarray]:
        """Fingerprint one batch; returns the per-column hashes (by original name) for reuse."""
        names = batch.schema.names
        hashed = {normalise_name(n): hash_column(batch.column(i)) for i, n in enumerate(names)}
        full, rest = _row_hashes(hashed, self.id_columns)
        self._rows.append(full)
        if rest is not None:
            self._rest.append(rest)
        for c in self.id_columns:
            self._ids[c].append(hashed[c])
        self.rows += batch.num_rows
        return {n: hashed[normalise_name(n)] for n in names}

    def distinct_ids(self, column: str) -> int:
        """How many different non-missing values a pseudonym column holds (for the identifier check)."""
        parts = self._ids[normalise_name(column)]
        if not parts:
            return 0
        u = _sorted_unique(np.concatenate(parts))
        return int(len(u) - np.count_nonzero(u == _NULL))

    def write(self, folder: Path) -> list[Path]:
        """Write the files into `folder`; returns their paths (the caller publishes them by rename)."""
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        rows = _sorted_unique(np.concatenate(self._rows)) if self._rows else np.empty(0, np.uint64)
        p = folder / f"{self.dataset}.rows.npy"
        np.save(p, rows)
        written.append(p)
        if self._rest:
            p = folder / f"{self.dataset}.rest.npy"
            np.save(p, _sorted_unique(np.concatenate(self._rest)))
            written.append(p)
        for i, c in enumerate(self.id_columns):
            parts = self._ids[c]
            u = _sorted_unique(np.concatenate(parts)) if parts else np.empty(0, np.uint64)
            u = u[u != _NULL]
            p = folder / f"{self.dataset}.id.{i}.npy"
            np.save(p, u)
            written.append(p)
        meta = {
            "format": FORMAT, "dataset": self.dataset, "columns": self.columns,
            "id_columns": self.id_columns, "rows": self.rows, "distinct_rows": int(len(rows)),
            "rest": bool(self._rest),
        }
        p = folder / f"{self.dataset}.json"
        p.write_text(json.dumps(meta, indent=2))
        written.append(p)  # the .json last: it is what readers look for
        return written


def _frame_column(series: pd.Series) -> pa.Array:
    try:
        return pa.array(series, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return pa.array([None if pd.isna(v) else str(v) for v in series], pa.string())


def _member(hashes: np.ndarray, sorted_set: np.ndarray) -> np.ndarray:
    if len(sorted_set) == 0 or len(hashes) == 0:
        return np.zeros(len(hashes), dtype=bool)
    i = np.searchsorted(sorted_set, hashes)
    i[i == len(sorted_set)] = 0
    return sorted_set[i] == hashes


def datasets(state_dir, project: str) -> list[dict]:
    """Metadata of every fingerprinted dataset of a project (empty when none)."""
    folder = paths.fingerprints(Path(state_dir), project)
    if not folder.is_dir():
        return []
    out = []
    for p in sorted(folder.glob("*.json")):
        meta = json.loads(p.read_text())
        if meta.get("format") == FORMAT:
            meta["_folder"] = folder
            out.append(meta)
    return out


def find_input_rows(state_dir, project: str, frame: pd.DataFrame) -> list[int]:
    """Positions (0-based, not index labels) of rows of `frame` that occur in the project's imported data.

    See the module docstring for the matching rule. Returns [] when the project has no fingerprints.
    """
    n = len(frame)
    if n == 0:
        return []
    by_name: dict[str, int] = {}
    for pos, name in enumerate(frame.columns):
        by_name.setdefault(normalise_name(name), pos)
    hit = np.zeros(n, dtype=bool)
    cache: dict[str, np.ndarray] = {}

    def hashed(name: str) -> np.ndarray:
        """Each frame column is converted and hashed once, however many datasets compare against it."""
        if name not in cache:
            cache[name] = hash_column(_frame_column(frame.iloc[:, by_name[name]]))
        return cache[name]

    for meta in datasets(state_dir, project):
        folder: Path = meta["_folder"]
        name = meta["dataset"]
        cols = meta["columns"]
        id_cols = meta["id_columns"]
        rest_cols = [c for c in cols if c not in id_cols]
        if len(cols) >= MIN_ROW_COLUMNS and all(c in by_name for c in cols):
            full, _ = _row_hashes({c: hashed(c) for c in cols}, id_cols)
            hit |= _member(full, np.load(folder / f"{name}.rows.npy", mmap_mode="r"))
        if meta.get("rest") and len(rest_cols) >= MIN_ROW_COLUMNS and all(c in by_name for c in rest_cols):
            rest = combine([hashed(c) for c in sorted(rest_cols)])  # as _row_hashes builds it on import
            hit |= _member(rest, np.load(folder / f"{name}.rest.npy", mmap_mode="r"))
        for i, c in enumerate(id_cols):
            if c in by_name:
                h = hashed(c)
                hit |= _member(h, np.load(folder / f"{name}.id.{i}.npy", mmap_mode="r")) & (h != _NULL)
    return [int(i) for i in np.flatnonzero(hit)]


def erase(folder: Path, out: Path, dataset: str, removed: pa.Table, kept_column, matched: Iterable[str]) -> list[Path]:
    """Write into `out` the fingerprints of `dataset` (read from `folder`) without the `removed` rows
    (records of people who objected); returns the files, [] when the dataset has none.

    Only the removed rows are hashed in full. A hash that a kept row shares stays: another person's
    pseudonym in a pseudonym column not in `matched`, or the same values on every other column. Kept
    rows' columns come one at a time from `kept_column(name)`, and only as far as that question needs
    (most removed rows are told apart from every kept row by their first one or two columns)."""
    name = _safe(dataset)
    if not (folder / f"{name}.json").exists():
        return []
    meta = json.loads((folder / f"{name}.json").read_text())
    id_cols, matched = meta["id_columns"], {normalise_name(c) for c in matched}
    original = {normalise_name(n): n for n in removed.column_names}
    hashed = {c: hash_column(removed.column(original[c])) for c in meta["columns"]}
    full, rest = _row_hashes(hashed, id_cols)
    out.mkdir(parents=True, exist_ok=True)
    written = []

    def save(suffix: str, keep_out: np.ndarray) -> None:
        have = np.load(folder / f"{name}.{suffix}")
        p = out / f"{name}.{suffix}"
        np.save(p, have[~_member(have, keep_out)])
        written.append(p)

    rows_gone = _sorted_unique(full)
    save("rows.npy", rows_gone)
    if meta.get("rest") and rest is not None:
        gone = _sorted_unique(rest)
        save("rest.npy", gone[~_member(gone, _shared_rest(hashed, id_cols, kept_column, original))])
    for i, c in enumerate(id_cols):
        gone = _sorted_unique(hashed[c])
        if c not in matched:
            gone = gone[~_member(gone, _sorted_unique(hash_column(kept_column(original[c]))))]
        save(f"id.{i}.npy", gone)
    rows_left = np.load(out / f"{name}.rows.npy", mmap_mode="r")
    meta.update(rows=int(meta["rows"]) - removed.num_rows, distinct_rows=len(rows_left))
    p = out / f"{name}.json"
    p.write_text(json.dumps(meta, indent=2))
    written.append(p)
    return written


def _shared_rest(hashed: dict[str, np.ndarray], id_cols: list[str], kept_column, original: dict) -> np.ndarray:
    """Sorted rest-hashes (all columns but the pseudonyms) that some kept row has too: kept rows are
    narrowed column by column (the removed rows' most varied column first) to those agreeing with some
    removed row on every column so far."""
    names = sorted(c for c in hashed if c not in id_cols)
    order = sorted(names, key=lambda c: -len(_sorted_unique(hashed[c])))
    candidates = None
    kept_hashes: dict[str, np.ndarray] = {}
    for c in order:
        col = kept_column(original[c])
        if candidates is not None:
            col = col.take(pa.array(candidates))
        h = hash_column(col)
        hit = _member(h, _sorted_unique(hashed[c]))
        candidates = np.flatnonzero(hit) if candidates is None else candidates[hit]
        kept_hashes = {k: v[hit] for k, v in kept_hashes.items()}
        kept_hashes[c] = h[hit]
        if len(candidates) == 0:
            return np.empty(0, np.uint64)
    return _sorted_unique(combine([kept_hashes[n] for n in names]))


def remove(state_dir, project: str, dataset: str) -> None:
    """Delete one dataset's fingerprints (used when an import is rolled back)."""
    folder = paths.fingerprints(Path(state_dir), project)
    name = _safe(dataset)
    for p in [folder / f"{name}.json", folder / f"{name}.rows.npy", folder / f"{name}.rest.npy",
              *folder.glob(f"{name}.id.*.npy")]:
        if p.exists():
            os.unlink(p)
