"""imports: requests in both directions (out: outputs, in: code and packages), items of a kind

Revision ID: e0002_imports
Revises: e0001_egress
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op

revision = "e0002_imports"
down_revision = "e0001_egress"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("egress_requests") as batch:
        batch.add_column(sa.Column("direction", sa.String(length=3), nullable=False, server_default="out"))
    with op.batch_alter_table("egress_files") as batch:
        batch.add_column(sa.Column("kind", sa.String(length=10), nullable=False, server_default="file"))


def downgrade() -> None:
    with op.batch_alter_table("egress_files") as batch:
        batch.drop_column("kind")
    with op.batch_alter_table("egress_requests") as batch:
        batch.drop_column("direction")
