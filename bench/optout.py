"""`enclave optout apply` over a large imported dataset next to a plain pyarrow read and write of it.

The dataset (20 columns, a pseudonymised `nir`, 10 million rows by default; ENCLAVE_BENCH_OPTOUT_ROWS
for quick runs) is generated once with a fixed project key and cached under /var/tmp/enclave-bench/.
100,000 objections (ENCLAVE_BENCH_OPTOUT_OBJECTIONS) are recorded through `optout.add` with their raw
identifiers, then `apply` rewrites the file. Each side runs in its own subprocess: wall time of the work
and CPU time of the work (measured inside the child), peak RSS of the whole child (wait4). Targets (issue 18): apply
at most 2x the plain read and write, peak memory under 2 GB.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench.ingest import CACHE, _measure

DEFAULT_ROWS = 10_000_000
DEFAULT_OBJECTIONS = 100_000
KEY = bytes(range(32))  # the cached file's project key (bench data only)


def _rows() -> int:
    return int(os.environ.get("ENCLAVE_BENCH_OPTOUT_ROWS", DEFAULT_ROWS))


def _objections() -> int:
    return int(os.environ.get("ENCLAVE_BENCH_OPTOUT_OBJECTIONS", DEFAULT_OBJECTIONS))


def dataset(rows: int) -> Path:
    """A Parquet file as the importer writes it: the ingest bench's columns, `nir` pseudonymised."""
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    from bench.ingest import source
    from ingest import pseudonym

    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"optout-{rows}.parquet"
    if path.exists():
        return path
    tmp = path.with_suffix(".partial")
    with pa_csv.open_csv(source(rows), read_options=pa_csv.ReadOptions(block_size=16 << 20)) as reader:
        writer = None
        for batch in reader:
            i = batch.schema.get_field_index("nir")
            batch = batch.set_column(i, "nir", pseudonym.pseudonymise(batch.column(i), KEY))
            if writer is None:
                writer = pq.ParquetWriter(tmp, batch.schema)
            writer.write_batch(batch)
        writer.close()
    os.replace(tmp, path)
    return path


# --- the two children -----------------------------------------------------------------------------

def _child_plain(src: str, out: str) -> dict:
    import pyarrow.parquet as pq

    t0, c0 = time.perf_counter(), time.process_time()
    source = pq.ParquetFile(src)
    rows = 0
    with pq.ParquetWriter(out, source.schema_arrow) as writer:
        for batch in source.iter_batches(batch_size=262_144):
            writer.write_batch(batch)
            rows += batch.num_rows
    return {"seconds": time.perf_counter() - t0, "cpu": time.process_time() - c0, "rows": rows}


def _child_apply(src: str, work: str, objections: str) -> dict:
    import numpy as np

    from enclave import db, projects
    from enclave import settings as settings_mod

    from ingest import keys, optout
    from ingest.models import Dataset

    work_dir = Path(work)
    data = work_dir / "data"
    data.mkdir()
    s = settings_mod.Settings({"state_dir": str(work_dir / "state")})
    s.state_dir.mkdir(mode=0o700)
    db.migrate(s.database_url)
    shutil.copyfile(src, data / "stays.parquet")
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(data / "stays.parquet").metadata
    manifest = {"dataset": "stays", "project": "bench", "file": "stays.parquet", "rows": meta.num_rows,
                "columns": meta.schema.names, "pseudonymised": ["nir"]}
    (data / "stays.manifest.json").write_text(json.dumps(manifest))
    with db.transaction(s.database_url) as session:
        p = projects.create(session, "bench", "bench", str(data))
        session.add(Dataset(project_id=p.id, name="stays", file=str(data / "stays.parquet"), source_sha256="0" * 64,
                            rows=meta.num_rows, columns=meta.num_columns, imported_by="bench",
                            manifest=json.dumps(manifest)))
    keys.store(s.state_dir, "bench", KEY)
    people = np.random.default_rng(18).choice(max(meta.num_rows // 2, 1), int(objections), replace=False)
    ids = [str(v + 1_000_000_000_000) for v in people]
    t0 = time.perf_counter()
    optout.add(s, "bench", "nir", ids)
    added = time.perf_counter() - t0
    t0, c0 = time.perf_counter(), time.process_time()
    done = optout.apply(s, "bench")
    return {"seconds": time.perf_counter() - t0, "cpu": time.process_time() - c0, "add_seconds": added,
            "removed": done[0].total if done else 0}


def run() -> list[dict]:
    rows, objections = _rows(), _objections()
    t0 = time.perf_counter()
    src = dataset(rows)
    prepared = time.perf_counter() - t0
    with tempfile.TemporaryDirectory(dir="/var/tmp", prefix="enclave-bench-optout-") as tmp:
        plain = _measure("_plain", str(src), str(Path(tmp) / "plain.parquet"), module="bench.optout")
        work = Path(tmp) / "apply"
        work.mkdir()
        app = _measure("_apply", str(src), str(work), str(objections), module="bench.optout")
    b = f"optout apply: {rows:,} rows x 20 cols, {objections:,} objections"
    return [
        {"benchmark": b, "metric": "plain pyarrow Parquet read + write (streaming)", "value": plain["seconds"], "unit": "s", "target": ""},
        {"benchmark": b, "metric": "enclave optout apply (match, rewrite, fingerprints)", "value": app["seconds"], "unit": "s", "target": ""},
        {"benchmark": b, "metric": "apply / plain", "value": app["seconds"] / plain["seconds"], "unit": "x", "target": "<= 2"},
        {"benchmark": b, "metric": "apply / plain, CPU time of the work (all threads)",
         "value": app["cpu"] / plain["cpu"], "unit": "x", "target": ""},
        {"benchmark": b, "metric": "apply peak RSS (whole child, add included)", "value": app["peak_rss_mb"], "unit": "MB", "target": "< 2048"},
        {"benchmark": b, "metric": "plain peak RSS", "value": plain["peak_rss_mb"], "unit": "MB", "target": ""},
        {"benchmark": b, "metric": "records removed", "value": app["removed"], "unit": "rows", "target": ""},
        {"benchmark": b, "metric": "optout add of the objections (one project key)", "value": app["add_seconds"], "unit": "s", "target": ""},
        {"benchmark": b, "metric": "dataset generated (cached after first run)", "value": prepared, "unit": "s", "target": ""},
    ]


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] in ("_plain", "_apply"):
        fn = _child_plain if sys.argv[1] == "_plain" else _child_apply
        print(json.dumps(fn(*sys.argv[2:])))
    else:
        for row in run():
            print(row)
