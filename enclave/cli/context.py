"""What every command needs: the settings and a migrated database."""

from __future__ import annotations

import argparse
import sys

from enclave import db
from enclave import settings as settings_mod


def load(args: argparse.Namespace, *, migrate: bool = True) -> settings_mod.Settings:
    """Settings for this invocation; the database is brought up to date unless told not to."""
    s = settings_mod.load(getattr(args, "config", None))
    for warning in s.warnings:  # allowed but probably a mistake: one line each, every command (`enclave up` too)
        print(f"enclave: warning: {warning}", file=sys.stderr)
    if migrate:
        s.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        db.migrate(s.database_url)
    return s
