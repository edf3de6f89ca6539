"""What a notebook container is told about the package index, and the workspace folders installs go to.

pip and R inside the container are conveniences: they are pointed at the index on the project's
gateway and install into the person's workspace for this project (so packages survive restarts and
the kernel finds them). What may be installed is decided by the index on the host; a researcher who
changes these variables reaches nothing else (the firewall) and sees nothing more (the index).
"""

from __future__ import annotations

import os
from pathlib import Path

WORK = "/home/jovyan/work"
PYTHON_USER_BASE = f"{WORK}/.local"
PYTHON_SITE = ".local/lib/python3.11/site-packages"  # the image's Python (Debian 12)
R_LIBRARY = ".R/library"


def environment(gateway: str, port: int) -> dict[str, str]:
    index = f"http://{gateway}:{port}"
    return {
        "ENCLAVE_PACKAGE_INDEX": index,
        "PIP_INDEX_URL": f"{index}/simple/",
        "PIP_TRUSTED_HOST": gateway,  # plain HTTP on the project's own gateway, never beyond the host
        "PIP_USER": "1",
        "PYTHONUSERBASE": PYTHON_USER_BASE,
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_NO_WARN_SCRIPT_LOCATION": "1",
        "R_LIBS_USER": f"{WORK}/{R_LIBRARY}",
    }


def ensure_install_folders(workspace: Path, uid: int, gid: int) -> None:
    """Create the folders installs go to, so Python and R put them on their paths at start (both skip
    a user library that does not exist yet, which would hide the first install until a restart)."""
    for rel in (PYTHON_SITE, R_LIBRARY):
        folder = workspace
        for part in Path(rel).parts:
            folder = folder / part
            if folder.is_symlink():  # the researcher's own folder: never follow a link they planted
                raise OSError(f"{folder} is a link")
            if not folder.exists():
                folder.mkdir(mode=0o755)
                os.chown(folder, uid, gid)
