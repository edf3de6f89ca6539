"""Import of a large CSV next to a plain pyarrow CSV -> Parquet copy of the same file, in the same run.

The file (20 columns, one identifier column, 10 million rows by default; ENCLAVE_BENCH_INGEST_ROWS for
quick runs) is generated once and cached under /var/tmp/enclave-bench/. Each side runs in its own
subprocess: wall time of the work itself (measured inside the child, after imports and set-up), CPU
time and peak RSS of the whole child (from wait4). On a shared, busy machine the wall times of the
two sides are taken under different loads; the CPU-time ratio is the steadier figure. Targets (issue 6): import under 3x the plain read-and-write,
under 2 GB peak memory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CACHE = Path("/var/tmp/enclave-bench")
DEFAULT_ROWS = 10_000_000


def _rows() -> int:
    return int(os.environ.get("ENCLAVE_BENCH_INGEST_ROWS", DEFAULT_ROWS))


def generate(path: Path, rows: int, chunk: int = 500_000) -> None:
    """A synthetic hospital-stay file: identifier `nir` (about 2 stays per person) + 19 other columns."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pa_csv

    rng = np.random.default_rng(6)
    tmp = path.with_suffix(".partial")
    writer = None
    try:
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            people = rng.integers(0, max(rows // 2, 1), n)
            day = rng.integers(17_000, 20_000, n)
            los = rng.integers(0, 30, n)
            t = pa.table({
                "nir": pc.cast(pa.array(people + 1_000_000_000_000), pa.string()),
                "age": rng.integers(0, 100, n),
                "sex": rng.integers(1, 3, n),
                "postcode": pc.utf8_lpad(pc.cast(pa.array(rng.integers(1000, 96000, n) // 10 * 10), pa.string()), 5, "0"),
                "admitted": pa.array(day.astype("int32"), pa.date32()),
                "discharged": pa.array((day + los).astype("int32"), pa.date32()),
                "length_of_stay": los,
                "diagnosis": pc.binary_join_element_wise(
                    pa.array(np.array(list("ABCDEFGIJKN"))[rng.integers(0, 11, n)]),
                    pc.cast(pa.array(rng.integers(100, 999, n)), pa.string()), ""),
                "procedure": pc.binary_join_element_wise(
                    pa.array(np.array(["HHFA", "DZQM", "EBLA", "JQGD", "NFKA"])[rng.integers(0, 5, n)]),
                    pc.cast(pa.array(rng.integers(1, 30, n)), pa.string()), "00"),
                "ward": pa.array(np.array(["cardio", "neuro", "icu", "onco", "ortho", "peds"])[rng.integers(0, 6, n)]),
                "cost": np.round(rng.gamma(2.0, 1500.0, n), 2),
                "weight": np.round(rng.normal(72, 14, n), 1),
                "height": rng.integers(140, 200, n),
                "bmi": np.round(rng.normal(25, 4, n), 1),
                "smoker": rng.integers(0, 2, n).astype(bool),
                "region": rng.integers(1, 19, n),
                "hospital": pc.binary_join_element_wise(
                    "H", pc.utf8_lpad(pc.cast(pa.array(rng.integers(1, 3000, n)), pa.string()), 4, "0"), ""),
                "visits": rng.poisson(3, n),
                "severity": rng.integers(1, 5, n),
                "status": pa.array(np.array(["home", "transfer", "death", "other"])[rng.integers(0, 4, n)]),
            })
            if writer is None:
                writer = pa_csv.CSVWriter(str(tmp), t.schema)
            writer.write_table(t)
        writer.close()
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def source(rows: int) -> Path:
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"ingest-{rows}.csv"
    if not path.exists():
        generate(path, rows)
    return path


# --- the two children -----------------------------------------------------------------------------

def _child_plain(src: str, out: str) -> dict:
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    from ingest import importer

    t0 = time.perf_counter()
    rows = 0
    with pa_csv.open_csv(src, read_options=pa_csv.ReadOptions(block_size=importer.CSV_BLOCK)) as reader:
        with pq.ParquetWriter(out, reader.schema) as writer:
            for batch in reader:
                writer.write_batch(batch)
                rows += batch.num_rows
    return {"seconds": time.perf_counter() - t0, "rows": rows}


def _child_import(src: str, work: str) -> dict:
    from enclave import db, projects
    from enclave import settings as settings_mod

    from ingest import importer

    work_dir = Path(work)
    data = work_dir / "data"
    data.mkdir()
    s = settings_mod.Settings({"state_dir": str(work_dir / "state")})
    s.state_dir.mkdir(mode=0o700)
    db.migrate(s.database_url)
    with db.transaction(s.database_url) as session:
        projects.create(session, "bench", "bench", str(data))
    req = importer.ImportRequest(
        project="bench", source=Path(src), id_columns=["nir"], quasi_identifiers=["age", "sex", "postcode"],
        name="stays", accept_risk="benchmark data",
    )
    t0 = time.perf_counter()
    res = importer.import_dataset(s, "bench", req)
    return {"seconds": time.perf_counter() - t0, "rows": res.rows,
            "k": res.report.measures["k"], "unique_share": res.report.measures["unique_share"]}


def _measure(kind: str, *args: str, module: str = "bench.ingest") -> dict:
    """Run one side (`python -m module kind args`) in a fresh interpreter; returns its figures plus peak
    RSS (MB) and CPU time from wait4."""
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen([sys.executable, "-m", module, kind, *args], cwd=root,
                            stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{module} {kind} failed with status {proc.returncode}")
    result = json.loads(out.strip().splitlines()[-1])
    result["peak_rss_mb"] = usage.ru_maxrss / 1024  # KiB on Linux
    result["cpu_seconds"] = usage.ru_utime + usage.ru_stime  # whole child, less sensitive to a busy machine
    return result


def run() -> list[dict]:
    rows = _rows()
    t0 = time.perf_counter()
    src = source(rows)
    prepared = time.perf_counter() - t0
    size_mb = src.stat().st_size / 1e6
    with tempfile.TemporaryDirectory(dir="/var/tmp", prefix="enclave-bench-ingest-") as tmp:
        plain = _measure("_plain", str(src), str(Path(tmp) / "plain.parquet"))
        work = Path(tmp) / "import"
        work.mkdir()
        imp = _measure("_import", str(src), str(work))
    b = f"ingest {rows:,} rows x 20 cols ({size_mb:,.0f} MB CSV)"
    ratio = imp["seconds"] / plain["seconds"]
    return [
        {"benchmark": b, "metric": "plain pyarrow CSV->Parquet (streaming)", "value": plain["seconds"], "unit": "s", "target": ""},
        {"benchmark": b, "metric": "enclave data import (pseudonyms, risk, fingerprints)", "value": imp["seconds"], "unit": "s", "target": ""},
        {"benchmark": b, "metric": "import / plain", "value": ratio, "unit": "x", "target": "< 3"},
        {"benchmark": b, "metric": "import / plain, CPU time (user+sys of each child)",
         "value": imp["cpu_seconds"] / plain["cpu_seconds"], "unit": "x", "target": "< 3"},
        {"benchmark": b, "metric": "import peak RSS", "value": imp["peak_rss_mb"], "unit": "MB", "target": "< 2048"},
        {"benchmark": b, "metric": "plain peak RSS", "value": plain["peak_rss_mb"], "unit": "MB", "target": ""},
        {"benchmark": b, "metric": "import throughput", "value": rows / imp["seconds"], "unit": "rows/s", "target": ""},
        {"benchmark": b, "metric": "test file generated (cached after first run)", "value": prepared, "unit": "s", "target": ""},
    ]


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] in ("_plain", "_import"):
        fn = _child_plain if sys.argv[1] == "_plain" else _child_import
        print(json.dumps(fn(*sys.argv[2:])))
    else:
        for row in run():
            print(row)
