"""host guard: per-project bounds, daily volumes, guarded servers

Revision ID: 0002_guard
Revises: 0001_core
"""
import sqlalchemy as sa
from alembic import op

revision = "0002_guard"
down_revision = "0001_core"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("guard_burst_mib", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("guard_sustained_kib_per_s", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("guard_daily_mib", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("terminals", sa.Boolean(), nullable=True))
    op.create_table(
        "daily_volumes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("project", sa.String(length=30), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("raised_cap_mib", sa.Integer(), nullable=True),
        sa.Column("capped", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("day", "username", "project", name="uq_daily_volume"),
    )
    op.create_index(op.f("ix_daily_volumes_day"), "daily_volumes", ["day"], unique=False)
    op.create_table(
        "guarded_servers",
        sa.Column("key", sa.String(length=32), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("project", sa.String(length=30), nullable=False),
        sa.Column("ip", sa.String(length=45), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("counted_bytes", sa.BigInteger(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.Column("cap_bytes", sa.BigInteger(), nullable=False),
        sa.Column("slowed", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )


def downgrade() -> None:
    op.drop_table("guarded_servers")
    op.drop_index(op.f("ix_daily_volumes_day"), table_name="daily_volumes")
    op.drop_table("daily_volumes")
    with op.batch_alter_table("projects") as batch:
        for column in ("terminals", "guard_daily_mib", "guard_sustained_kib_per_s", "guard_burst_mib"):
            batch.drop_column(column)
