"""Alembic environment: runs on the engine enclave.db hands over, with the enclave's version table."""

from alembic import context

from enclave.db import VERSION_TABLE
from enclave.models import Base

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
