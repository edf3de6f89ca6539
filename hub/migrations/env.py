"""Alembic environment: runs on the engine hub.db hands over, with the enclave's version table."""

from alembic import context

from hub.db import VERSION_TABLE
from hub.models import Base

config = context.config
engine = config.attributes["engine"]

with engine.begin() as connection:
    context.configure(
        connection=connection,
        version_table=VERSION_TABLE,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    context.run_migrations()
