"""A project's imported data, published as the importer publishes it (Parquet beside its manifest), for
the evidence checks: 4,000 hospital stays of 2,500 persons, with a few rare people on purpose."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from egress_review.checks import Policy
from egress_review.checks.evidence import ProjectData

REGIONS = ["North", "South", "East", "West"]
DIAGNOSES = ["I21", "I50", "J18", "E11"]


def stays(n: int = 4000, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    persons = rng.integers(0, 2500, n)
    age = np.clip(rng.normal(60, 15, n).round(), 18, 95).astype(int)
    frame = pd.DataFrame({
        "pid": [f"P{p:07d}XQ" for p in persons],
        "age": age,
        "sex": np.where(persons % 2 == 0, "F", "M"),
        "region": [REGIONS[(p // 2) % 4] for p in persons],
        "admission_date": [dt.date(2023, 1, 1) + dt.timedelta(days=int(d)) for d in rng.integers(0, 730, n)],
        "diagnosis": [DIAGNOSES[i] for i in rng.integers(0, 4, n)],
        "los_days": rng.integers(1, 21, n),
        "cost": rng.gamma(2.0, 1500.0, n).round(2),
    })
    # rare people: the only 'Z99' stays (3 of them), and one very old man
    frame.loc[0:2, "diagnosis"] = "Z99"
    frame.loc[10, ["age", "sex"]] = [104, "M"]
    return frame


def publish(folder: Path, name: str, frame: pd.DataFrame, pseudonyms=("pid",)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {"dataset": name, "file": f"{name}.parquet", "rows": len(frame), "columns": list(frame.columns),
                "pseudonymised": list(pseudonyms), "quasi_identifiers": []}
    (folder / f"{name}.manifest.json").write_text(json.dumps(manifest))
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), folder / f"{name}.parquet")
    return folder


def policy(folder: Path, **kw) -> Policy:
    return Policy(data=ProjectData(folder), **kw)
