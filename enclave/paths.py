"""Where things live under state_dir: one place, so the spawner, the egress service and the importer agree."""

from __future__ import annotations

from pathlib import Path


def workspaces_root(state_dir: Path) -> Path:
    return Path(state_dir) / "workspaces"


def workspace(state_dir: Path, project: str, username: str) -> Path:
    """The writable folder of one user in one project (mounted at /home/jovyan/work)."""
    return workspaces_root(state_dir) / project / username


def quarantine(state_dir: Path) -> Path:
    """Content-addressed, read-only copies of files submitted for release."""
    return Path(state_dir) / "quarantine"


def project_keys(state_dir: Path) -> Path:
    """Per-project pseudonymisation keys (never mounted in any container)."""
    return Path(state_dir) / "secrets" / "projects"


def fingerprints(state_dir: Path, project: str) -> Path:
    """Fingerprints of a project's imported rows, for the egress checks."""
    return Path(state_dir) / "fingerprints" / project


def packages(state_dir: Path, ecosystem: str) -> Path:
    """The offline package repository's files (`python` wheels and sdists, `r` source packages)."""
    return Path(state_dir) / "packages" / ecosystem


WORKSPACE_OWNER = (1000, 100)  # jovyan:users in the notebook image: who owns what lands in a workspace
