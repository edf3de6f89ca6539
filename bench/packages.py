"""Installing a package with its dependencies from the enclave's package index vs from a local wheel
folder with `pip --no-index`, side by side in one run.

pandas with its five dependencies (numpy, python-dateutil, pytz, six, tzdata: ~20 MB of wheels) is
bundled from the image's wheelhouse, imported into a scratch enclave, allowed for a project, and served
by the real index (hub.packages.index) on loopback. Each round installs into a fresh `--target` folder
once through the index and once from the bundle's own files (same wheels), alternating; the median of
the rounds is reported. Target (issue 17): the index at most 1.5x the local folder.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROUNDS = 5
PACKAGE = "pandas"


def _install(args: list[str], target: Path) -> float:
    started = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--no-cache-dir",
                        "--no-compile", "--quiet", "--target", str(target), *args, PACKAGE],
                       capture_output=True, text=True)
    took = time.perf_counter() - started
    if r.returncode != 0:
        raise RuntimeError(f"pip install failed: {r.stderr[-500:]}")
    return took


def run() -> list[dict]:
    from enclave import bundles, db, images, packages, projects
    from enclave import settings as settings_mod

    from tests.support.env import make_env
    from tests.support.package_index import Index

    wheelhouse = images.wheelhouse_path(settings_mod.Settings())
    with tempfile.TemporaryDirectory(prefix="enclave-bench-packages-") as tmp:
        tmp = Path(tmp)
        (tmp / "site").mkdir()
        env = make_env(tmp / "site")
        bundle = tmp / "bundle"
        bundles.make([PACKAGE], bundle, pip_args=["--no-index", "--find-links", str(wheelhouse)])
        with db.transaction(env.db_url) as s:
            files, _ = bundles.import_bundle(s, env.state_dir, "bench", bundle)
            (tmp / "data").mkdir()
            projects.create(s, "bench", "bench", str(tmp / "data"))
            packages.set_rule(s, "bench", "python", PACKAGE, allowed=True, project="bench")
        size = sum(f.size for f in files)
        index = Index(env, "bench")
        try:
            via_index, local = [], []
            for i in range(ROUNDS):
                via_index.append(_install(["--index-url", f"{index.url}/simple/"], tmp / f"i{i}"))
                local.append(_install(["--no-index", "--find-links", str(bundle / bundles.FILES)], tmp / f"l{i}"))
        finally:
            index.stop()
    a, b = statistics.median(via_index), statistics.median(local)
    name = "packages"
    return [
        {"benchmark": name, "metric": f"pip install {PACKAGE} (+{len(files) - 1} deps, {size / 2**20:.0f} MiB), "
                                      "enclave index, median", "value": a, "unit": "s", "target": ""},
        {"benchmark": name, "metric": "same from a local wheel folder (--no-index), median", "value": b, "unit": "s",
         "target": ""},
        {"benchmark": name, "metric": "index / local folder", "value": a / b, "unit": "x", "target": "<= 1.5"},
    ]
