"""Engine, sessions and migrations for the enclave's database (SQLite or PostgreSQL).

Schema changes only ever come from alembic migrations: enclave/migrations holds the core chain, and other
packages (egress_review, ingest) keep their own branch in <package>/migrations/versions, all applied
with `upgrade heads`. The version table is `enclave_alembic_version`, so the enclave can share a
PostgreSQL database with JupyterHub's own alembic-managed tables.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

VERSION_TABLE = "enclave_alembic_version"
_ROOT = Path(__file__).resolve().parent.parent
MIGRATION_PACKAGES = ("enclave", "egress_review", "ingest")  # each owns its tables' migrations


def _sqlite_pragmas(dbapi_conn, _record):
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.close()


@lru_cache(maxsize=8)
def engine_for(url: str) -> Engine:
    """One engine per URL per process."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        eng = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(eng, "connect", _sqlite_pragmas)
        return eng
    return create_engine(url, pool_pre_ping=True)


def sessionmaker_for(url: str) -> sessionmaker[Session]:
    return sessionmaker(engine_for(url), expire_on_commit=False)


@contextlib.contextmanager
def transaction(url: str) -> Iterator[Session]:
    """A session whose changes commit together at the end, or not at all."""
    with sessionmaker_for(url).begin() as session:
        yield session


# Short database work from the hub's event loop (session re-checks, audit writes): its own thread, so
# it never queues behind logins' password hashing (hub.auth.passwords.run has that pool).
_QUICK = ThreadPoolExecutor(max_workers=1, thread_name_prefix="enclave-db")


async def off_loop(fn, *args):
    """Run short blocking database work `fn(*args)` off the event loop, one call at a time."""
    return await asyncio.get_running_loop().run_in_executor(_QUICK, functools.partial(fn, *args))


def alembic_config(url: str) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(_ROOT / "enclave" / "migrations"))
    locations = [
        str(_ROOT / pkg / "migrations" / "versions")
        for pkg in MIGRATION_PACKAGES
        if (_ROOT / pkg / "migrations" / "versions").is_dir()
    ]
    cfg.set_main_option("version_locations", " ".join(locations))
    cfg.set_main_option("path_separator", "space")
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["engine"] = engine_for(url)
    return cfg


def migrate(url: str) -> None:
    """Bring the database to the newest schema (safe to run on every start)."""
    command.upgrade(alembic_config(url), "heads")
