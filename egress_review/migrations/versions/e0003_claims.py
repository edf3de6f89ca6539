"""claims: a reviewer says "I am on it", so no more reviewers than a request needs start it

Revision ID: e0003_claims
Revises: e0002_imports
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op

revision = "e0003_claims"
down_revision = "e0002_imports"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "egress_claims",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("steward", sa.String(length=64), nullable=False),
        sa.Column("claimed_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["request_id"], ["egress_requests.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("request_id", "steward", name="uq_egress_claim"),
    )
    op.create_index(op.f("ix_egress_claims_request_id"), "egress_claims", ["request_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_egress_claims_request_id"), table_name="egress_claims")
    op.drop_table("egress_claims")
