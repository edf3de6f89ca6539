"""ingest: the opt-out register, and dataset versions rewritten by `optout apply`

Revision ID: i0002_optout
Revises: i0001_ingest
"""
import sqlalchemy as sa
from alembic import op

revision = "i0002_optout"
down_revision = "i0001_ingest"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ingest_datasets") as batch:
        batch.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("removed_for_objections", sa.BigInteger(), nullable=False, server_default="0"))
    op.create_table(
        "optout_objections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("digest", sa.LargeBinary(length=32), nullable=False),
        sa.Column("added_at", sa.DateTime(), nullable=False),
        sa.Column("added_by", sa.String(length=64), nullable=False),
        sa.Column("withdrawn_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("kind", "digest", name="uq_optout_objection"),
    )
    op.create_index("ix_optout_objections_withdrawn_at", "optout_objections", ["withdrawn_at"])
    op.create_table(
        "optout_pseudonyms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("objection_id", sa.Integer(), nullable=False),
        sa.Column("project", sa.String(length=30), nullable=False),
        sa.Column("pseudonym", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(["objection_id"], ["optout_objections.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("objection_id", "project", "pseudonym", name="uq_optout_pseudonym"),
    )
    op.create_index("ix_optout_pseudonyms_objection_id", "optout_pseudonyms", ["objection_id"])
    op.create_index("ix_optout_pseudonyms_project", "optout_pseudonyms", ["project"])


def downgrade() -> None:
    op.drop_table("optout_pseudonyms")
    op.drop_table("optout_objections")
    with op.batch_alter_table("ingest_datasets") as batch:
        batch.drop_column("removed_for_objections")
        batch.drop_column("version")
