"""An enclave in a folder: settings file + state folder + migrated database, as tests and benches need."""

from __future__ import annotations

import types
from pathlib import Path

from enclave import db
from enclave import settings as settings_mod

from tests.support.hub import dump_toml


def make_env(folder: Path, *, db_url: str | None = None, settings: dict | None = None) -> types.SimpleNamespace:
    """Write `folder`/enclave.toml (state in `folder`/state, database on `db_url` or SQLite in the
    state folder, plus any {section: {key: value}}), migrate, and return
    (config, state_dir, db_url, settings)."""
    folder = Path(folder)
    state = folder / "state"
    config = folder / "enclave.toml"
    data: dict = {"state_dir": str(state)}
    if db_url:
        data["database"] = {"url": db_url}
    for section, values in (settings or {}).items():
        data.setdefault(section, {}).update(values)
    config.write_text(dump_toml(data))
    s = settings_mod.load(config)
    db.migrate(s.database_url)
    return types.SimpleNamespace(config=config, state_dir=state, db_url=s.database_url, settings=s)
