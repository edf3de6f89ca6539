"""Package bundles: made on a connected host, imported on the enclave, verified whole before anything lands.

A bundle is a folder: `manifest.json` and `files/`. `make` fills it with `pip download` (wheels for the
notebook image's Python and platform, whatever the connected host runs) plus any R source packages
given, and writes each file's sha256, name, version and what it requires. `import_bundle` refuses the
whole bundle when anything is off: a file the manifest does not list or lists with another hash or
size, a link or folder among the files, a name that is not a wheel, Python source archive or R source
package, an archive whose own metadata names another package or version, or a file that would
replace a different one of the same name. Only then are the files copied into the repository
(paths.packages) and catalogued (enclave.models.PackageFile), with one `packages.import` audit event.
What a package requires is read from the archive itself, never from the manifest.
"""

from __future__ import annotations

import email.parser
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import InvalidSdistFilename, InvalidWheelFilename, parse_sdist_filename, parse_wheel_filename
from packaging.version import InvalidVersion, Version
from sqlalchemy import select
from sqlalchemy.orm import Session

from enclave import audit, clock, packages, paths
from enclave.errors import Invalid
from enclave.models import PackageFile

MANIFEST = "manifest.json"
FILES = "files"
FORMAT = 1
IMAGE_PYTHON = "3.11"  # the notebook image's Python (Debian 12)
# Debian 12 has glibc 2.36: any manylinux wheel up to that runs in the image.
IMAGE_PLATFORMS = ["manylinux2014_x86_64"] + [f"manylinux_2_{m}_x86_64" for m in range(17, 37)] + ["linux_x86_64"]
MAX_FILE_BYTES = 1 << 30
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,250}$")
R_BASE = frozenset({"R", "base", "compiler", "datasets", "graphics", "grDevices", "grid", "methods", "parallel",
                    "splines", "stats", "stats4", "tcltk", "tools", "utils"})


@dataclass
class BundleFile:
    filename: str
    ecosystem: str
    name: str
    version: str
    sha256: str
    size: int
    requires: list[str] = field(default_factory=list)
    requires_python: str = ""


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# -- reading a package's own metadata ---------------------------------------------------------------
def _target_env() -> dict:
    env = default_environment()
    env.update(python_version=IMAGE_PYTHON, python_full_version=f"{IMAGE_PYTHON}.2", sys_platform="linux",
               platform_system="Linux", os_name="posix", platform_machine="x86_64",
               implementation_name="cpython", platform_python_implementation="CPython")
    return env


def _python_requires(metadata: str) -> tuple[str, str, list[str], str]:
    """(name, version, requirement names for the image, Requires-Python) from core metadata text."""
    msg = email.parser.Parser().parsestr(metadata, headersonly=True)
    env, names = _target_env(), []
    for line in msg.get_all("Requires-Dist") or []:
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue
        if req.marker is None or req.marker.evaluate({**env, "extra": ""}):
            names.append(packages.normalise("python", req.name))
    return msg.get("Name", ""), msg.get("Version", ""), sorted(set(names)), msg.get("Requires-Python", "") or ""


def _read_member(archive, name: str, limit: int = 4 << 20) -> str:
    if isinstance(archive, zipfile.ZipFile):
        info = archive.getinfo(name)
        if info.file_size > limit:
            raise ValueError(f"{name} is {info.file_size} bytes")
        return archive.read(name).decode("utf-8", "replace")
    member = archive.getmember(name)
    if not member.isfile() or member.size > limit:
        raise ValueError(f"{name} is not a small regular file")
    return archive.extractfile(member).read().decode("utf-8", "replace")


def _dcf(text: str) -> dict[str, str]:
    """An R DESCRIPTION file's fields (Debian control format: continuation lines start with space)."""
    out, key = {}, None
    for line in text.splitlines():
        if line[:1] in (" ", "\t") and key:
            out[key] += " " + line.strip()
        elif ":" in line:
            key, value = line.split(":", 1)
            key = key.strip()
            out[key] = value.strip()
    return out


def r_requires(desc: dict[str, str]) -> list[str]:
    names = set()
    for fld in ("Depends", "Imports", "LinkingTo"):
        for part in (desc.get(fld) or "").split(","):
            name = part.split("(")[0].strip()
            if name and name not in R_BASE:
                names.add(name)
    return sorted(names)


def _same_package(meta_name: str, meta_version: str, name: str, version: Version) -> bool:
    """Whether an archive's own metadata names the package and version its file name says."""
    try:
        return packages.normalise("python", meta_name) == name and Version(meta_version) == version
    except (Invalid, InvalidVersion):
        return False


def describe(path: Path, ecosystem: str) -> BundleFile:
    """Name, version and requirements of one package file from its own metadata; ValueError if it is
    not a well-formed package of that ecosystem."""
    fn = path.name
    if not _SAFE_NAME.match(fn):
        raise ValueError("its name has characters a package file name cannot have")
    if ecosystem == "python":
        if fn.endswith(".whl"):
            try:
                name, version, _, _ = parse_wheel_filename(fn)
            except InvalidWheelFilename as exc:
                raise ValueError(f"not a wheel name ({exc})") from None
            try:
                with zipfile.ZipFile(path) as z:
                    metas = [n for n in z.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA")]
                    if len(metas) != 1:
                        raise ValueError("a wheel has exactly one .dist-info/METADATA")
                    meta_name, meta_version, requires, req_py = _python_requires(_read_member(z, metas[0]))
            except zipfile.BadZipFile:
                raise ValueError("not a zip archive, so not a wheel") from None
        elif fn.endswith((".tar.gz", ".zip")):
            try:
                name, version = parse_sdist_filename(fn)
            except InvalidSdistFilename as exc:
                raise ValueError(f"not a source archive name ({exc})") from None
            meta_name, meta_version, requires, req_py = _sdist_metadata(path)
        else:
            raise ValueError("a Python package file is a wheel (.whl) or a source archive (.tar.gz, .zip)")
        if not _same_package(meta_name, meta_version, name, version):
            raise ValueError(f"its metadata says {meta_name} {meta_version}, its name says {name} {version}")
        return BundleFile(fn, "python", str(name), str(version), sha256_of(path), path.stat().st_size,
                          requires, req_py)
    if ecosystem == "r":
        m = re.match(r"^([A-Za-z][A-Za-z0-9.]*)_([0-9][0-9.-]*)\.tar\.gz$", fn)
        if not m:
            raise ValueError("an R source package is named <Package>_<Version>.tar.gz")
        try:
            with tarfile.open(path, "r:gz") as t:
                desc = _dcf(_read_member(t, f"{m[1]}/DESCRIPTION"))
        except (tarfile.TarError, KeyError, OSError):
            raise ValueError("not a gzipped tar with <Package>/DESCRIPTION, so not an R source package") from None
        if desc.get("Package") != m[1] or desc.get("Version") != m[2]:
            raise ValueError(f"its DESCRIPTION says {desc.get('Package')} {desc.get('Version')}, "
                             f"its name says {m[1]} {m[2]}")
        return BundleFile(fn, "r", m[1], m[2], sha256_of(path), path.stat().st_size, r_requires(desc))
    raise ValueError(f"unknown ecosystem {ecosystem!r}")


def _sdist_metadata(path: Path) -> tuple[str, str, list[str], str]:
    try:
        if path.name.endswith(".zip"):
            with zipfile.ZipFile(path) as z:
                pkg = [n for n in z.namelist() if n.count("/") == 1 and n.endswith("/PKG-INFO")]
                text = _read_member(z, pkg[0]) if len(pkg) == 1 else None
        else:
            with tarfile.open(path, "r:gz") as t:
                pkg = [n for n in t.getnames() if n.count("/") == 1 and n.endswith("/PKG-INFO")]
                text = _read_member(t, pkg[0]) if len(pkg) == 1 else None
    except (zipfile.BadZipFile, tarfile.TarError, OSError, ValueError):
        raise ValueError("not a readable source archive") from None
    if text is None:
        raise ValueError("a source archive has <name>-<version>/PKG-INFO")
    return _python_requires(text)


# -- making a bundle (connected host) ----------------------------------------------------------------
def make(requirements: list[str], out: Path, *, r_sources: list[Path] = (), pip_args: list[str] = ()) -> dict:
    """Download wheels for `requirements` (and their dependencies) for the image's Python into `out`,
    copy R source packages beside them, and write the manifest. Returns the manifest."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise Invalid(f"{out} is not empty; give a new folder for the bundle", reason="bundle_exists")
    files = out / FILES
    files.mkdir(parents=True, exist_ok=True)
    if requirements:
        argv = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--dest", str(files),
                "--only-binary=:all:", "--python-version", IMAGE_PYTHON, "--implementation", "cp",
                "--abi", f"cp{IMAGE_PYTHON.replace('.', '')}"]
        for plat in IMAGE_PLATFORMS:
            argv += ["--platform", plat]
        result = subprocess.run(argv + list(pip_args) + list(requirements), capture_output=True, text=True)
        if result.returncode != 0:
            raise Invalid("pip could not download the requirements: " + (result.stderr.strip().splitlines() or ["?"])[-1],
                          reason="download_failed")
    for src in r_sources:
        shutil.copyfile(src, files / Path(src).name)
    r_names, described = {Path(s).name for s in r_sources}, []
    for p in sorted(files.iterdir()):
        eco = "r" if p.name in r_names else "python"
        try:
            described.append(asdict(describe(p, eco)))
        except ValueError as exc:
            raise Invalid(f"{p.name}: {exc}", reason="bad_package") from None
    manifest = {"format": FORMAT, "made_at": clock.now().isoformat(timespec="seconds"), "python": IMAGE_PYTHON,
                "requirements": list(requirements), "r_sources": [Path(s).name for s in r_sources],
                "files": described}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


# -- importing a bundle (enclave) --------------------------------------------------------------------
def _load_manifest(bundle: Path) -> tuple[dict, str]:
    mpath = bundle / MANIFEST
    try:
        st = os.lstat(mpath)
    except FileNotFoundError:
        raise Invalid(f"{bundle} has no {MANIFEST}; a bundle is the folder `enclave packages bundle` wrote",
                      reason="no_manifest") from None
    if not stat.S_ISREG(st.st_mode) or st.st_size > 16 << 20:
        raise Invalid(f"{mpath} is not a plain file of reasonable size", reason="bad_manifest")
    raw = mpath.read_bytes()
    try:
        manifest = json.loads(raw)
        assert isinstance(manifest, dict) and manifest.get("format") == FORMAT
        assert isinstance(manifest.get("files"), list)
        for f in manifest["files"]:
            assert isinstance(f, dict) and isinstance(f.get("filename"), str) and isinstance(f.get("sha256"), str)
    except (ValueError, AssertionError):
        raise Invalid(f"{mpath} is not a bundle manifest (format {FORMAT})", reason="bad_manifest") from None
    return manifest, hashlib.sha256(raw).hexdigest()


def verify(bundle: Path) -> tuple[list[BundleFile], str]:
    """Every file of the bundle checked against the manifest and its own metadata; Invalid naming every
    problem if any (nothing is imported then)."""
    bundle = Path(bundle)
    if bundle.is_symlink() or not bundle.is_dir():
        raise Invalid(f"{bundle} is not a bundle folder", reason="no_bundle")
    manifest, manifest_sha = _load_manifest(bundle)
    files_dir = bundle / FILES
    if files_dir.is_symlink() or not files_dir.is_dir():
        raise Invalid(f"{bundle} has no {FILES}/ folder", reason="no_files")
    listed = {f["filename"]: f for f in manifest["files"]}
    problems, good = [], []
    if len(listed) != len(manifest["files"]):
        problems.append("the manifest lists a file twice")
    present = {e.name: e for e in os.scandir(files_dir)}
    for extra in sorted(set(present) - set(listed)):
        problems.append(f"{extra}: not in the manifest")
    for name in sorted(listed):
        entry, expect = present.get(name), listed[name]
        if entry is None:
            problems.append(f"{name}: in the manifest but missing")
            continue
        st = entry.stat(follow_symlinks=False)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink > 1:
            problems.append(f"{name}: not a plain file (link, folder or hard-linked)")
            continue
        if st.st_size > MAX_FILE_BYTES:
            problems.append(f"{name}: larger than {MAX_FILE_BYTES >> 20} MiB")
            continue
        if expect.get("ecosystem") not in packages.ECOSYSTEMS:
            problems.append(f"{name}: the manifest gives no ecosystem (python or r)")
            continue
        try:
            got = describe(Path(entry.path), expect["ecosystem"])
        except ValueError as exc:
            problems.append(f"{name}: {exc}")
            continue
        if got.sha256 != expect["sha256"] or got.size != expect.get("size"):
            problems.append(f"{name}: its sha256 or size differs from the manifest (changed after bundling)")
            continue
        good.append(got)
    if problems:
        raise Invalid(f"bundle refused, nothing imported ({len(problems)} problem(s)): " + "; ".join(problems),
                      reason="bundle_refused")
    return good, manifest_sha


def import_bundle(session: Session, state_dir: Path, actor: str, bundle: Path,
                  expect_manifest_sha256: str | None = None) -> tuple[list[BundleFile], list[str]]:
    """Verify, copy and catalogue a bundle; returns (new files, already present). All or nothing."""
    files, manifest_sha = verify(bundle)
    if expect_manifest_sha256 and expect_manifest_sha256.lower() != manifest_sha:
        raise Invalid(f"bundle refused: its manifest's sha256 is {manifest_sha}, not the "
                      f"{expect_manifest_sha256} given", reason="bundle_refused")
    known = {f.filename: f for f in session.execute(
        select(PackageFile).where(PackageFile.filename.in_([f.filename for f in files]))).scalars()}
    clashes = [f.filename for f in files if f.filename in known and known[f.filename].sha256 != f.sha256]
    if clashes:
        raise Invalid("bundle refused, nothing imported: these files already exist with other contents: "
                      + ", ".join(clashes), reason="bundle_refused")
    new = [f for f in files if f.filename not in known]
    for f in new:
        dest_dir = paths.packages(state_dir, f.ecosystem)
        dest_dir.mkdir(parents=True, exist_ok=True, mode=0o755)
        tmp = dest_dir / f".{f.filename}.part"
        shutil.copyfile(Path(bundle) / FILES / f.filename, tmp)
        if sha256_of(tmp) != f.sha256:  # changed while we copied
            tmp.unlink()
            raise Invalid(f"bundle refused: {f.filename} changed while it was copied", reason="bundle_refused")
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest_dir / f.filename)
        session.add(PackageFile(filename=f.filename, ecosystem=f.ecosystem, name=f.name, version=f.version,
                                sha256=f.sha256, size=f.size, requires=json.dumps(f.requires),
                                requires_python=f.requires_python, bundle=manifest_sha))
    session.flush()
    audit.record(session, actor, "packages.import", f"bundle:{manifest_sha}", {
        "new": [f"{f.ecosystem}:{f.filename}" for f in new], "already_present": sorted(known)})
    return new, sorted(known)
