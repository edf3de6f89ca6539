"""ingest: one row per imported dataset

Revision ID: i0001_ingest
Revises:
Create Date: 2026-11-23
"""
from alembic import op
import sqlalchemy as sa


revision = "i0001_ingest"
down_revision = None
branch_labels = ("ingest",)
depends_on = "0001_core"


def upgrade() -> None:
    op.create_table(
        "ingest_datasets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("file", sa.Text(), nullable=False),
        sa.Column("source_sha256", sa.String(length=64), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("columns", sa.Integer(), nullable=False),
        sa.Column("imported_by", sa.String(length=64), nullable=False),
        sa.Column("imported_at", sa.DateTime(), nullable=False),
        sa.Column("manifest", sa.Text(), nullable=False),
        sa.Column("risk_accepted", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("project_id", "name", name="uq_ingest_dataset_name"),
    )
    op.create_index("ix_ingest_datasets_project_id", "ingest_datasets", ["project_id"])


def downgrade() -> None:
    op.drop_index("ix_ingest_datasets_project_id", table_name="ingest_datasets")
    op.drop_table("ingest_datasets")
