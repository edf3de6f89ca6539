"""Build the researcher notebook image with no container registry and no PyPI at build time.

The build has three inputs, all on the build host:
- a Debian 12 base image: `[images] base_image`, or `enclave-base:bookworm` made locally by
  images/base/build-base.sh (debootstrap + docker import) when it is missing;
- a wheelhouse: every Python wheel the image needs, fetched once with `pip download` (constrained by
  constraints.txt and images/notebook/requirements.txt). An air-gapped site copies the folder over and
  the build is identical; when the wheelhouse is already complete nothing is fetched;
- images/notebook/ (Dockerfile, policy, jupyter config).
The image carries a label with a digest of those inputs, so `ensure_notebook_image` rebuilds exactly
when they changed and otherwise does nothing. The image ID is recorded in state_dir/images.json.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import io
import json
import os
import platform
import re
import subprocess
import sys
import tarfile
import tempfile
import time
import typing
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from enclave.errors import EnclaveError

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = REPO / "images" / "notebook"
GATEWAY_DIR = REPO / "images" / "gateway"
BASE_SCRIPT = REPO / "images" / "base" / "build-base.sh"
CONSTRAINTS = REPO / "constraints.txt"
LOCAL_BASE = "enclave-base:bookworm"
INPUTS_LABEL = "org.research-enclave.build-inputs"
# The image's Python is Debian 12's; wheels are fetched for it whatever Python the host runs.
TARGET_PYTHON = "3.11"
SKIP_IN_CONTEXT = {"wheelhouse", "__pycache__", ".gitignore"}
BUILD_TIMEOUT_SECONDS = 3600
ANSI = re.compile(r"\x1b\[[0-9;]*m")

Log = Callable[[str], None]


class ImageBuildError(EnclaveError):
    reason = "image_build_failed"
    status = 500


@dataclass
class ImageRecord:
    image: str
    id: str
    inputs: str
    base_image: str
    base_id: str
    built_at: str
    build_seconds: float
    size_bytes: int


def _docker():
    """The one Docker seam of this module (tests may pass their own client)."""
    import docker

    try:
        client = docker.from_env(timeout=BUILD_TIMEOUT_SECONDS)
        client.ping()
    except Exception as exc:  # docker.errors.DockerException and connection errors
        raise ImageBuildError(
            "cannot reach the Docker engine; start it (scripts/ensure-dockerd.sh) and try again",
            detail=str(exc),
        ) from None
    return client


def _quiet(_: str) -> None:
    pass


# --- where things are -----------------------------------------------------------------------------


def wheelhouse_path(settings) -> Path:
    """[images] wheelhouse: empty = images/notebook/wheelhouse; relative paths are from state_dir."""
    configured = settings.images.wheelhouse.strip()
    if not configured:
        return NOTEBOOK_DIR / "wheelhouse"
    path = Path(configured).expanduser()
    return path if path.is_absolute() else settings.state_dir / path


def base_image_name(settings) -> str:
    return settings.images.base_image.strip() or LOCAL_BASE


def record_path(settings) -> Path:
    return settings.state_dir / "images.json"


# --- inputs ---------------------------------------------------------------------------------------


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _context_files() -> list[tuple[Path, str]]:
    """(file on disk, name in the build context) for images/notebook, wheelhouse aside."""
    files = []
    for path in sorted(NOTEBOOK_DIR.rglob("*")):
        rel = path.relative_to(NOTEBOOK_DIR)
        if path.is_file() and not SKIP_IN_CONTEXT.intersection(rel.parts) and path.suffix != ".pyc":
            files.append((path, rel.as_posix()))
    return files


def _named_in_requirements() -> set[str]:
    return {
        _canonical(re.split(r"[=<>!~\[; ]", line.strip(), maxsplit=1)[0])
        for line in (NOTEBOOK_DIR / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    }


def unnamed_wheels(wheelhouse: Path) -> set[str]:
    """Packages in the wheelhouse that requirements.txt does not name (stale, or a new dependency
    whose constraints.txt pin image_constraints() would leave out)."""
    return {_canonical(w.name.split("-")[0]) for w in wheelhouse.glob("*.whl")} - _named_in_requirements()


def image_constraints() -> bytes:
    """constraints.txt cut down to the packages requirements.txt names (it names every package of the
    image: exact pins for image-only ones, bare names for those constraints.txt pins). A new hub-only
    dependency therefore neither rebuilds the image nor needs the wheelhouse to tell."""
    named = _named_in_requirements()
    keep = [
        line
        for line in CONSTRAINTS.read_text().splitlines()
        if "==" in line and not line.startswith("#") and _canonical(line.split("==")[0].strip()) in named
    ]
    return ("# constraints.txt, only the packages of requirements.txt (enclave/images.py)\n" + "\n".join(keep) + "\n").encode()


def inputs_digest(base_id: str) -> str:
    """sha256 over the base image ID, every file of images/notebook and the image's constraints; the
    wheels themselves are pinned exactly by requirements.txt and the constraints."""
    h = hashlib.sha256(f"base {base_id}\n".encode())
    for path, name in _context_files():
        h.update(f"{name}\n".encode())
        h.update(hashlib.sha256(path.read_bytes()).digest())
    h.update(b"constraints.txt\n" + hashlib.sha256(image_constraints()).digest())
    return "sha256:" + h.hexdigest()


# --- wheelhouse -----------------------------------------------------------------------------------


def _pip_download_args(wheelhouse: Path) -> list[str]:
    machine = platform.machine() or "x86_64"
    platforms = [f"manylinux_2_{minor}_{machine}" for minor in range(36, 4, -1)]
    platforms += [f"manylinux2014_{machine}", f"manylinux2010_{machine}", f"manylinux1_{machine}"]
    args = [
        sys.executable, "-m", "pip", "download", "--disable-pip-version-check",
        "--dest", str(wheelhouse),
        "-r", str(NOTEBOOK_DIR / "requirements.txt"), "-c", str(CONSTRAINTS),
        "--only-binary=:all:", "--python-version", TARGET_PYTHON,
        "--implementation", "cp", "--abi", "cp" + TARGET_PYTHON.replace(".", ""),
    ]
    for p in platforms:
        args += ["--platform", p]
    return args


def prepare_wheelhouse(wheelhouse: Path, log: Log = _quiet) -> Path:
    """Make `wheelhouse` hold every wheel the image needs. Offline first: when the folder is already
    complete (say, copied to an air-gapped site) nothing is fetched."""
    wheelhouse.mkdir(parents=True, exist_ok=True)
    args = _pip_download_args(wheelhouse)
    offline = subprocess.run(
        args + ["--no-index", "--find-links", str(wheelhouse)], capture_output=True, text=True
    )
    if offline.returncode == 0:
        log(f"wheelhouse {wheelhouse} is complete")
        _warn_unnamed(wheelhouse, log)
        return wheelhouse
    log(f"fetching wheels into {wheelhouse} (pip download)")
    online = subprocess.run(args, capture_output=True, text=True)
    if online.returncode != 0:
        tail = "\n".join(online.stderr.strip().splitlines()[-8:])
        raise ImageBuildError(
            f"could not fill the wheelhouse {wheelhouse}: pip download failed. On a host with no "
            "package index, copy a complete wheelhouse there (from a host that built the image).",
            detail=tail,
        )
    _warn_unnamed(wheelhouse, log)
    return wheelhouse


def _warn_unnamed(wheelhouse: Path, log: Log) -> None:
    extra = unnamed_wheels(wheelhouse)
    if extra:
        log(f"warning: wheels not named in images/notebook/requirements.txt: {', '.join(sorted(extra))} "
            "(stale ones can be deleted; a new dependency must be added there)")


# --- images ---------------------------------------------------------------------------------------


def _image(client, name: str):
    import docker

    try:
        return client.images.get(name)
    except docker.errors.ImageNotFound:
        return None


def ensure_base_image(settings, client, log: Log = _quiet) -> str:
    """The base image's ID; builds the local debootstrap base when it is the one asked for and missing."""
    name = base_image_name(settings)
    image = _image(client, name)
    if image is None and name == LOCAL_BASE:
        log(f"building {LOCAL_BASE} with debootstrap (a few minutes)")
        done = subprocess.run(["bash", str(BASE_SCRIPT), LOCAL_BASE], capture_output=True, text=True)
        if done.returncode != 0:
            raise ImageBuildError(
                f"could not build the base image {LOCAL_BASE} with {BASE_SCRIPT} (needs root, "
                "debootstrap and a Debian mirror); or set [images] base_image to a Debian 12 image "
                "you have",
                detail=done.stderr[-2000:],
            )
        image = _image(client, name)
    if image is None:
        raise ImageBuildError(
            f"base image {name} is not on this host; load it (docker load) or pull it from your "
            "registry, or leave [images] base_image empty to build the local debootstrap base"
        )
    return image.id


def _context_tar(wheelhouse: Path) -> "typing.IO[bytes]":
    """The build context as one tar: images/notebook, the image's constraints and the wheelhouse."""
    fh = tempfile.TemporaryFile()
    wheelhouse = wheelhouse.resolve()  # a symlinked wheelhouse must go in as its folder, not the link
    with tarfile.open(fileobj=fh, mode="w") as tar:
        for path, name in _context_files():
            tar.add(path, arcname=name, recursive=False)
        constraints = image_constraints()
        info = tarfile.TarInfo("constraints.txt")
        info.size, info.mode, info.mtime = len(constraints), 0o644, 0
        tar.addfile(info, io.BytesIO(constraints))
        tar.add(wheelhouse, arcname="wheelhouse", recursive=False)
        for wheel in sorted(wheelhouse.glob("*.whl")):
            tar.add(wheel, arcname=f"wheelhouse/{wheel.name}")
    fh.seek(0)
    return fh


@contextlib.contextmanager
def _build_lock(name: str):
    """One build of an image at a time on this host (tests and `make up` may ask together)."""
    safe = hashlib.sha256(name.encode()).hexdigest()[:16]
    path = Path(tempfile.gettempdir()) / f"enclave-image-build-{safe}.lock"
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def build_notebook_image(settings, *, no_cache: bool = False, log: Log = _quiet, client=None) -> ImageRecord:
    """Build (or rebuild) the notebook image and record its ID. Raises ImageBuildError with the
    failing step's last lines."""
    client = client or _docker()
    name = settings.images.notebook
    with _build_lock(name):
        return _build(settings, client, name, no_cache, log)


def _build(settings, client, name: str, no_cache: bool, log: Log) -> ImageRecord:
    base_id = ensure_base_image(settings, client, log)
    wheelhouse = prepare_wheelhouse(wheelhouse_path(settings), log)
    digest = inputs_digest(base_id)
    started = time.monotonic()
    log(f"building {name} from {NOTEBOOK_DIR} on {base_image_name(settings)}")
    tail: list[str] = []
    with _context_tar(wheelhouse) as context:
        stream = client.api.build(
            fileobj=context,
            custom_context=True,
            tag=name,
            buildargs={"BASE_IMAGE": base_id},
            labels={INPUTS_LABEL: digest},
            nocache=no_cache,
            rm=True,
            forcerm=True,
            pull=False,
            decode=True,
            timeout=BUILD_TIMEOUT_SECONDS,
        )
        for chunk in stream:
            if "stream" in chunk:
                for line in ANSI.sub("", chunk["stream"]).splitlines():
                    if line.strip():
                        tail = (tail + [line])[-30:]
                        log(line)
            if "error" in chunk:
                raise ImageBuildError(
                    f"building {name} failed: {chunk['error'].strip()[:300]}",
                    detail="\n".join(tail + [chunk["error"]]),
                )
    image = client.images.get(name)
    record = ImageRecord(
        image=name,
        id=image.id,
        inputs=digest,
        base_image=base_image_name(settings),
        base_id=base_id,
        built_at=dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
        build_seconds=round(time.monotonic() - started, 1),
        size_bytes=int(image.attrs.get("Size", 0)),
    )
    _write_record(settings, record)
    log(f"built {name} {image.id}")
    return record


def _write_record(settings, record: ImageRecord) -> None:
    path = record_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = _read_records(settings)
    data["notebook"] = asdict(record)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def _read_records(settings) -> dict:
    try:
        return json.loads(record_path(settings).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def is_current(settings, client) -> bool:
    """The image exists and was built from today's inputs (same base, same files)."""
    image = _image(client, settings.images.notebook)
    base = _image(client, base_image_name(settings))
    if image is None or base is None:
        return False
    labels = image.attrs.get("Config", {}).get("Labels") or {}
    return labels.get(INPUTS_LABEL) == inputs_digest(base.id)


def ensure_notebook_image(settings, *, log: Log = _quiet, client=None) -> str:
    """The notebook image's name, built first if it is missing or its inputs changed. Idempotent:
    cheap when the image is current (what tests and `make up` call)."""
    client = client or _docker()
    name = settings.images.notebook
    if is_current(settings, client):
        return name
    with _build_lock(name):
        if not is_current(settings, client):  # someone else may have built it while we waited
            _build(settings, client, name, False, log)
    return name


def status(settings, client=None) -> dict:
    """What `enclave image status` shows."""
    client = client or _docker()
    name = settings.images.notebook
    image = _image(client, name)
    wheelhouse = wheelhouse_path(settings)
    info = {
        "image": name,
        "present": image is not None,
        "id": image.id if image else None,
        "size_bytes": int(image.attrs.get("Size", 0)) if image else None,
        "current": is_current(settings, client) if image else False,
        "base_image": base_image_name(settings),
        "wheelhouse": str(wheelhouse),
        "wheels": len(list(wheelhouse.glob("*.whl"))) if wheelhouse.is_dir() else 0,
        "recorded": _read_records(settings).get("notebook"),
    }
    return info


def ensure_gateway_image(settings, *, log: Log = _quiet, client=None) -> str:
    """The swarm gateway's image ([swarm] gateway_image, images/gateway: Debian's HAProxy on the
    base), built first when missing or when its Dockerfile or base changed. Cheap when current."""
    client = client or _docker()
    name = settings.swarm.gateway_image
    base_id = ensure_base_image(settings, client, log)
    digest = hashlib.sha256((GATEWAY_DIR / "Dockerfile").read_bytes() + base_id.encode()).hexdigest()
    image = _image(client, name)
    if image is not None and (image.attrs.get("Config", {}).get("Labels") or {}).get(INPUTS_LABEL) == digest:
        return name
    with _build_lock(name):
        log(f"building {name} from {GATEWAY_DIR}")
        try:
            client.images.build(path=str(GATEWAY_DIR), tag=name, pull=False, rm=True, labels={INPUTS_LABEL: digest},
                                buildargs={"BASE_IMAGE": base_image_name(settings)})
        except Exception as exc:  # noqa: BLE001 - docker-py raises BuildError or APIError
            raise ImageBuildError(f"could not build the gateway image {name}", detail=str(exc)[-2000:]) from None
    return name
