"""Outputs made with ACRO: show its own checks and the researcher's exception requests as findings.

Two ways in (docs/checks.md): the `results.json` that `acro.finalise()` writes is itself checked (kind
`acro`: one set of findings per output), and a table checked with a `results.json` in the same folder
that names it gets that output's findings added. ACRO's format (0.4.x): `{"version": ..., "results":
{uid: {"status": pass|fail|review, "type", "properties": {"method"}, "files": [{"name", "sdc":
{"summary": {...}, "cells": {check: [[row, col], ...]}}}], "summary", "exception", "comments": [...]}}}`;
older versions have the outputs at the top level. ACRO's cells are 0-based (row, column) positions in
the output table's body; they are reported as such.
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath

from egress_review.checks import Finding, Policy, readers

_SEVERITY = {"pass": "pass", "fail": "fail", "review": "review"}
RESULTS_MAX_BYTES = 20 * 2**20


def outputs_of(doc) -> dict | None:
    """The outputs of an ACRO results document, or None when it is not one."""
    if not isinstance(doc, dict):
        return None
    outputs = doc.get("results") if isinstance(doc.get("results"), dict) else doc
    if outputs and all(isinstance(v, dict) and "status" in v for v in outputs.values()):
        return outputs
    return None


def check(path: Path, policy: Policy, name: str) -> list[Finding]:
    doc = readers.json_file(path, "not valid JSON")
    outputs = outputs_of(doc)
    if outputs is None:
        return [Finding("human_review", "review", "a JSON file: a person must read it")]
    findings: list[Finding] = []
    for uid, out in outputs.items():
        findings += output_findings(uid, out)
    if not outputs:
        findings.append(Finding("acro", "warn", "the ACRO results file lists no outputs"))
    return findings


def _files(out: dict) -> list[dict]:
    """The output's file entries, ignoring anything a hand-edited results.json put in their place."""
    files = out.get("files")
    return [f for f in files if isinstance(f, dict)] if isinstance(files, list) else []


def output_findings(uid: str, out: dict) -> list[Finding]:
    status = str(out.get("status", "")).lower()
    severity = _SEVERITY.get(status, "review")
    files = _files(out)
    names = ", ".join(str(f.get("name")) for f in files) or "no file"
    method = (out.get("properties") or {}).get("method") if isinstance(out.get("properties"), dict) else None
    what = f"ACRO output '{uid}'" + (f" ({method}" if method else " (") + f"; {names})"
    summary = str(out.get("summary") or "").strip()
    if status and summary.lower().startswith(status):
        summary = summary[len(status):].lstrip(" ;:,")
    findings = [Finding("acro", severity, f"{what}: ACRO says {status or 'nothing'}" + (f" — {summary}" if summary else ""))]
    for f in files:
        sdc = f.get("sdc") or {}
        cells = sdc.get("cells") if isinstance(sdc, dict) else None
        for rule, positions in (cells.items() if isinstance(cells, dict) else []):
            if not positions or not isinstance(positions, list):
                continue
            pairs = [(str(p[0]), str(p[1])) for p in positions if isinstance(p, (list, tuple)) and len(p) == 2]
            if not pairs:
                continue
            findings.append(Finding(
                f"acro_{rule}".replace("-", "_"), severity if severity != "pass" else "review",
                f"{what}: ACRO's {rule} check flags {len(pairs)} cell{'s' if len(pairs) != 1 else ''} "
                f"of {f.get('name')} (0-based row, column)", cells=pairs))
    exception = str(out.get("exception") or "").strip()
    if exception:
        findings.append(Finding("acro_exception", "review",
                                f"{what}: the researcher asks for an exception: \u201c{exception}\u201d"))
    comments = out.get("comments") or []
    for comment in comments if isinstance(comments, list) else [comments]:
        if str(comment).strip():
            findings.append(Finding("acro_comment", "pass", f"{what}: researcher's comment: \u201c{comment}\u201d"))
    return findings


def beside(path: Path, name: str) -> list[Finding]:
    """Findings of the ACRO output naming this file, from a results.json in the same folder."""
    results = Path(path).parent / "results.json"
    try:
        if not results.is_file() or results.stat().st_size > RESULTS_MAX_BYTES:
            return []
        with results.open("rb") as fh:
            outputs = outputs_of(json.load(fh))
    except (OSError, ValueError):
        return []
    if not outputs:
        return []
    base = PurePosixPath(name).name
    found: list[Finding] = []
    for uid, out in outputs.items():
        files = _files(out)
        if any(PurePosixPath(str(f.get("name", ""))).name == base for f in files):
            found += output_findings(uid, out)
    return found
