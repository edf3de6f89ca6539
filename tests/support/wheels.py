"""Tiny, real package files for the package repository tests: pure-Python wheels pip installs, and R
source packages R CMD INSTALL builds without a compiler. Made here so no test needs PyPI or CRAN."""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile
import zipfile
from pathlib import Path


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def wheel(folder: Path, name: str, version: str, requires: tuple[str, ...] = (), code: str | None = None) -> Path:
    """`<name>-<version>-py3-none-any.whl` with a module `<name>` whose VERSION is `version`."""
    mod = name.replace("-", "_")
    dist = f"{mod}-{version}.dist-info"
    meta = "Metadata-Version: 2.1\n" f"Name: {name}\n" f"Version: {version}\n" + \
        "".join(f"Requires-Dist: {r}\n" for r in requires) + "\n"
    files = {
        f"{mod}/__init__.py": (code or f"VERSION = {version!r}\n").encode(),
        f"{dist}/METADATA": meta.encode(),
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: enclave-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "\n".join(_record_line(p, d) for p, d in files.items()) + f"\n{dist}/RECORD,,\n"
    files[f"{dist}/RECORD"] = record.encode()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{mod}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        for p, d in files.items():
            z.writestr(p, d)
    return path


def r_package(folder: Path, name: str, version: str, imports: tuple[str, ...] = ()) -> Path:
    """`<name>_<version>.tar.gz`: a pure-R source package exporting `<name>_version()`."""
    desc = (f"Package: {name}\nVersion: {version}\nTitle: Test Package\nDescription: For tests.\n"
            "License: MIT\nAuthor: Tests\nMaintainer: Tests <tests@localhost>\nEncoding: UTF-8\n"
            + (f"Imports: {', '.join(imports)}\n" if imports else ""))
    files = {
        f"{name}/DESCRIPTION": desc,
        f"{name}/NAMESPACE": f"export({name}_version)\n",
        f"{name}/R/{name}.R": f"{name}_version <- function() \"{version}\"\n",
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}_{version}.tar.gz"
    with tarfile.open(path, "w:gz") as t:
        for p, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(p)
            info.size = len(data)
            info.mode = 0o644
            t.addfile(info, io.BytesIO(data))
    return path


def survkit_bundle(folder: Path) -> Path:
    """A bundle as `enclave packages bundle` makes it: `survkit` 0.30 (requires `tinydep`), `tinydep` 1.2,
    `other` 2.0 and the R source package `rtiny` 1.0.2."""
    from enclave import bundles

    wh = folder / "wheels"
    wheel(wh, "survkit", "0.30", requires=("tinydep",))
    wheel(wh, "tinydep", "1.2")
    wheel(wh, "other", "2.0")
    out = folder / "bundle"
    bundles.make(["survkit", "other"], out, r_sources=[r_package(folder / "cran", "rtiny", "1.0.2")],
                 pip_args=["--no-index", "--find-links", str(wh)])
    return out
