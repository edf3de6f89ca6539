"""What every command needs: the settings and a migrated database."""

from __future__ import annotations

import argparse

from hub import db, settings as settings_mod


def load(args: argparse.Namespace, *, migrate: bool = True) -> settings_mod.Settings:
    """Settings for this invocation; the database is brought up to date unless told not to."""
    s = settings_mod.load(getattr(args, "config", None))
    if migrate:
        s.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        db.migrate(s.database_url)
    return s
