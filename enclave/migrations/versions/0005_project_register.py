"""projects: purpose, sponsor and approval reference, for the public transparency register

Revision ID: 0005_project_register
Revises: 0004_notifications
"""
import sqlalchemy as sa
from alembic import op

revision = "0005_project_register"
down_revision = "0004_notifications"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("purpose", sa.Text(), nullable=False, server_default=""))
        batch.add_column(sa.Column("sponsor", sa.String(length=200), nullable=False, server_default=""))
        batch.add_column(sa.Column("approval", sa.String(length=200), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("approval")
        batch.drop_column("sponsor")
        batch.drop_column("purpose")
