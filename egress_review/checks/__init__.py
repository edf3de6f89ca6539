"""Automated disclosure checks on a file asked out of the enclave: one verdict per file, with findings a
person can read and the cells they point at.

`check_file` first decides what the file really is (extension AND content, see `filetypes`), refuses
what may never leave (archives, executables, unknown types, oversize files), then hands the file to the
module for its kind: `tables` (CSV/TSV/XLSX/Parquet, incl. record-level data), `acro` (ACRO's
results.json), `documents` (images, PDF, notebooks, text). Every check streams: memory stays bounded
whatever the file's size. A file the checks cannot read gives a `fail` verdict with a readable message,
never an exception: a broken file must not slip through, nor stop the queue.

Verdict status is the worst severity among the findings: fail > review > warn > pass.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from enclave.models import DEFAULT_MIN_CELL_COUNT
from enclave.settings import DisclosureSection, EgressSection

log = logging.getLogger(__name__)

SEVERITIES = ("pass", "warn", "review", "fail")
CELLS_LISTED = 50  # cells named in one finding; the message gives the full count
_RANK = {s: i for i, s in enumerate(SEVERITIES)}


def _site_default(section, key: str):
    """A setting's default, from where it is declared (enclave.settings): never restated here."""
    return getattr(section, key).default_value


@dataclass(frozen=True)
class Policy:
    """Thresholds from the project's disclosure policy and the site settings; each default is the
    setting's own ([disclosure], [egress] max_file_mib, a project's min_cell_count): ACRO's."""

    min_cell_count: int = DEFAULT_MIN_CELL_COUNT  # ACRO default; SNDS projects use 11
    zeros_are_disclosive: bool = _site_default(DisclosureSection, "zeros_are_disclosive")
    p_ratio: float = _site_default(DisclosureSection, "p_ratio")  # p% rule
    nk_n: int = _site_default(DisclosureSection, "nk_n")
    nk_k: float = _site_default(DisclosureSection, "nk_k")  # n,k dominance
    max_file_bytes: int = _site_default(EgressSection, "max_file_mib") * 2**20
    project: str | None = None  # for the "rows of the project's own input data" check
    state_dir: Path | None = None
    # the project's data, read for evidence (checks.evidence.ProjectData; shared by the files of a
    # request, so each column is read once), and its already released tables as (name, path)
    data: object = field(default=None, compare=False, repr=False)
    released: tuple = ()

    def __post_init__(self):
        if self.min_cell_count < 1:
            raise ValueError("min_cell_count must be at least 1")
        if not 0 < self.p_ratio < 1 or not 0 < self.nk_k <= 1 or self.nk_n < 1:
            raise ValueError("p_ratio and nk_k are shares between 0 and 1, nk_n at least 1")
        if self.max_file_bytes < 1:
            raise ValueError("max_file_bytes must be positive")


@dataclass
class Finding:
    check: str
    severity: str  # "pass" | "warn" | "review" | "fail"
    message: str
    cells: list[tuple[str, str]] = field(default_factory=list)  # (row label, column label)

    def __post_init__(self):
        if self.severity not in _RANK:
            raise ValueError(f"unknown severity {self.severity!r}")
        self.cells = [(str(r), str(c)) for r, c in self.cells]

    def to_dict(self) -> dict:
        return {"check": self.check, "severity": self.severity, "message": self.message,
                "cells": [list(c) for c in self.cells]}


@dataclass
class FileVerdict:
    file: str
    status: str
    findings: list[Finding]
    kind: str  # table / image / pdf / notebook / text / acro / refused

    def to_dict(self) -> dict:
        return {"file": self.file, "status": self.status, "kind": self.kind,
                "findings": [f.to_dict() for f in self.findings]}


def policy_from_settings(settings, *, min_cell_count: int | None = None, project: str | None = None,
                         data_dir=None, released: tuple = ()) -> Policy:
    """The policy for one project: its smallest cell count, the site's [disclosure] thresholds and the
    [egress] file size limit; with `data_dir`, the project's imported data as evidence, and with
    `released`, its released tables for the differencing checks."""
    d = settings.disclosure
    data = None
    if data_dir is not None:
        from egress_review.checks.evidence import ProjectData

        data = ProjectData(data_dir)
    return Policy(
        min_cell_count=DEFAULT_MIN_CELL_COUNT if min_cell_count is None else min_cell_count,
        zeros_are_disclosive=d.zeros_are_disclosive, p_ratio=d.p_ratio, nk_n=d.nk_n, nk_k=d.nk_k,
        max_file_bytes=int(settings.egress.max_file_mib) * 2**20,
        project=project, state_dir=Path(settings.state_dir), data=data, released=tuple(released),
    )


class Unreadable(Exception):
    """The file is not what its type says or is broken; the message says what, for a person."""


def worst(findings: list[Finding]) -> str:
    """The verdict status: the worst severity, `pass` when there is nothing to say."""
    return max((f.severity for f in findings), key=_RANK.__getitem__, default="pass")


def check_file(path: Path, policy: Policy, display_name: str | None = None) -> FileVerdict:
    """Check one file. `display_name` (what the researcher called it) gives the extension when `path`
    is a content-addressed blob without one."""
    from egress_review.checks import filetypes

    path = Path(path)
    name = display_name or path.name
    try:
        kind, refusal = filetypes.classify(path, name, policy)
    except OSError as exc:
        return _verdict(name, "refused", [Finding("unreadable", "fail", f"cannot read the file: {exc.strerror or exc}")])
    if refusal is not None:
        return _verdict(name, "refused", [refusal])
    try:
        findings = _checker(kind)(path, policy, name)
    except Unreadable as exc:
        findings = [Finding("malformed", "fail", f"{name}: {exc}")]
    except MemoryError:
        findings = [Finding("checks_error", "fail", "the file was too large for the checks to hold; split it")]
    except Exception as exc:  # noqa: BLE001 - a broken file must give a verdict, never stop the queue
        log.exception("checks crashed on %s", name)
        return crashed(name, kind, exc)
    return _verdict(name, kind, findings)


def crashed(name: str, kind: str, exc: BaseException) -> FileVerdict:
    """The one verdict for checks that could not run on a file: `fail`. A crash is never a pass (it may
    be what a crafted file is for); a person must look, or the file is fixed and checked again."""
    return _verdict(name, kind, [Finding(
        "checks_error", "fail",
        f"the checks could not run on this file ({type(exc).__name__}: {str(exc)[:200]}); "
        "a person must look at it, or fix the file and check again")])


def _checker(kind: str):
    if kind == "table":
        from egress_review.checks.tables import check
    elif kind == "acro":
        from egress_review.checks.acro import check
    elif kind == "image":
        from egress_review.checks.documents import check_image as check
    elif kind == "pdf":
        from egress_review.checks.documents import check_pdf as check
    elif kind == "notebook":
        from egress_review.checks.documents import check_notebook as check
    else:
        from egress_review.checks.documents import check_text as check
    return check


def _verdict(name: str, kind: str, findings: list[Finding]) -> FileVerdict:
    return FileVerdict(file=name, status=worst(findings), findings=findings, kind=kind)


__all__ = ["Policy", "Finding", "FileVerdict", "Unreadable", "check_file", "crashed", "policy_from_settings", "worst",
           "SEVERITIES"]
