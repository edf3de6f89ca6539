"""The one seam to the automated disclosure checks (egress_review.checks), run on quarantined bytes.

Checks that crash, here or inside `check_file`, give the one crashed verdict (`checks.crashed`: fail),
so a file never goes through unseen and the queue never stops.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from egress_review.checks import check_file, crashed, policy_from_settings

log = logging.getLogger(__name__)


def run(blob: Path, settings, *, min_cell_count: int, project: str, display_name: str) -> dict:
    """Verdict for one stored file under the project's cell threshold and the site's [disclosure] and
    [egress] limits (the same policy `enclave check --project` applies)."""
    try:
        policy = policy_from_settings(settings, min_cell_count=min_cell_count, project=project)
        verdict = check_file(blob, policy, display_name).to_dict()
        json.dumps(verdict)  # must be storable
        return verdict
    except Exception as exc:  # noqa: BLE001 - any failure means "a person must look"
        log.exception("automated checks failed on %s", display_name)
        return crashed(display_name, "unknown", exc).to_dict()
