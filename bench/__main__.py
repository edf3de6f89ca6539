"""Run every benchmark module and print one table of figures and ratios.

Each module `bench/<topic>.py` has `run() -> list[dict]` with rows
{"benchmark", "metric", "value", "unit", "target"}. `python -m bench login spawn` runs only those.
A module that fails is reported as a failed row and the others still run; exit status 1 then.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import sys
import time
import traceback
from pathlib import Path


def _modules(selected: list[str]) -> list[str]:
    here = Path(__file__).resolve().parent
    names = sorted(m.name for m in pkgutil.iter_modules([str(here)]) if not m.name.startswith("_"))
    return [n for n in names if not selected or n in selected]


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def main(argv: list[str]) -> int:
    rows: list[dict] = []
    failed = False
    for name in _modules(argv):
        started = time.monotonic()
        print(f"== bench.{name} ...", file=sys.stderr, flush=True)
        try:
            rows.extend(importlib.import_module(f"bench.{name}").run())
        except Exception as exc:  # noqa: BLE001 - report and go on with the other benchmarks
            traceback.print_exc()
            rows.append({"benchmark": name, "metric": "FAILED", "value": str(exc)[:80], "unit": "", "target": ""})
            failed = True
        print(f"   done in {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    headers = ["benchmark", "metric", "value", "unit", "target"]
    table = [headers] + [[_fmt(r.get(h, "")) for h in headers] for r in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(headers))]
    for i, r in enumerate(table):
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))
    out = Path("artifacts") / "bench.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(rows, indent=2, default=str))
    print(f"\n(figures also in {out})", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
