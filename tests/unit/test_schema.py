"""Every alembic branch (the core's, the review service's, ingest's) creates exactly the tables the models
describe, on SQLite and PostgreSQL: a model changed without its migration fails here."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from enclave import db
from enclave.models import Base

import egress_review.models  # noqa: F401 - registers the tables on Base.metadata
import ingest.models  # noqa: F401
from tests.conftest import BOTH


@pytest.mark.parametrize("db_url", BOTH, indirect=True)
def test_migrations_match_models(db_url):
    db.migrate(db_url)
    with db.engine_for(db_url).connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    own = [d for d in diff if not (d[0] == "remove_table" and d[1].name == db.VERSION_TABLE)]  # alembic's own
    assert own == []


def test_every_package_with_tables_has_its_migration_branch():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    for package in db.MIGRATION_PACKAGES:
        assert list((root / package / "migrations" / "versions").glob("*.py")), package
