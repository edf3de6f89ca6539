"""The egress alembic branch creates exactly the tables the models describe (SQLite and PostgreSQL)."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import egress_review.models  # noqa: F401 - registers the tables on Base.metadata
from hub import db
from hub.models import Base
from tests.conftest import BOTH


@pytest.mark.parametrize("db_url", BOTH, indirect=True)
def test_migration_matches_models(db_url):
    db.migrate(db_url)
    with db.engine_for(db_url).connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert [d for d in diff if "egress" in str(d)] == []
