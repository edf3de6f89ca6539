"""The one seam to the automated disclosure checks (egress_review.checks), run on quarantined bytes.

A check that crashes must not let a file through unseen: its verdict becomes `review` with a finding
saying the checks could not run, so a person has to look.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def run(blob: Path, settings, *, min_cell_count: int, project: str, display_name: str) -> dict:
    """Verdict for one stored file under the project's cell threshold and the site's [disclosure] and
    [egress] limits (the same policy `enclave check --project` applies)."""
    from egress_review.checks import check_file, policy_from_settings

    try:
        policy = policy_from_settings(settings, min_cell_count=min_cell_count, project=project)
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
