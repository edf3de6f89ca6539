"""The one seam to the automated disclosure checks (egress_review.checks), run on quarantined bytes.

A check that crashes must not let a file through unseen: its verdict becomes `review` with a finding
saying the checks could not run, so a person has to look.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def run(blob: Path, *, min_cell_count: int, project: str, state_dir: Path, display_name: str,
        max_file_bytes: int) -> dict:
    from egress_review.checks import Policy, check_file

    try:
        policy = Policy(min_cell_count=min_cell_count, project=project, state_dir=state_dir,
                        max_file_bytes=max_file_bytes)
        verdict = check_file(blob, policy, display_name).to_dict()
        json.dumps(verdict)  # must be storable
        return verdict
    except Exception as exc:  # noqa: BLE001 - any failure means "a person must look"
        log.exception("automated checks failed on %s", display_name)
        return {
            "file": display_name, "status": "review", "kind": "unknown",
            "findings": [{"check": "checks_error", "severity": "review", "cells": [],
                          "message": f"the automated checks could not run on this file ({type(exc).__name__}); "
                                     "review it by hand"}],
        }
