"""egress review queue: requests, file groups, files, reviews, downloads

Revision ID: e0001_egress
Revises:
Create Date: 2026-11-23
"""
from alembic import op
import sqlalchemy as sa


revision = "e0001_egress"
down_revision = None
branch_labels = ("egress_review",)
depends_on = "0001_core"


def enum_column(name, *values):
    return sa.Enum(*values, name=name, native_enum=False, length=20)


def upgrade() -> None:
    op.create_table(
        "egress_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project", sa.String(length=30), nullable=False),
        sa.Column("requester", sa.String(length=64), nullable=False),
        sa.Column("status", enum_column("egress_request_status", "submitted", "under_review", "changes_requested",
                                  "released", "rejected", "withdrawn"), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("reviewers_required", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_egress_requests_project", "egress_requests", ["project"])
    op.create_index("ix_egress_requests_requester", "egress_requests", ["requester"])
    op.create_index("ix_egress_requests_status_updated", "egress_requests", ["status", "updated_at"])
    op.create_table(
        "egress_file_groups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), sa.ForeignKey("egress_requests.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("context", sa.Text(), nullable=False),
        sa.Column("controls", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("request_id", "name", name="uq_egress_group_name"),
    )
    op.create_index("ix_egress_file_groups_request_id", "egress_file_groups", ["request_id"])
    op.create_table(
        "egress_files",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), sa.ForeignKey("egress_file_groups.id", ondelete="CASCADE"), nullable=False),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("verdict", sa.Text(), nullable=False),
        sa.Column("check_status", sa.String(length=10), nullable=False),
        sa.Column("status", enum_column("egress_file_status", "pending", "approved", "changes_requested", "rejected",
                                  "superseded"), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("group_id", "path", "version", name="uq_egress_file_version"),
    )
    op.create_index("ix_egress_files_group_id", "egress_files", ["group_id"])
    op.create_index("ix_egress_files_sha256", "egress_files", ["sha256"])
    op.create_table(
        "egress_reviews",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("file_id", sa.Integer(), sa.ForeignKey("egress_files.id", ondelete="CASCADE"), nullable=False),
        sa.Column("steward", sa.String(length=64), nullable=False),
        sa.Column("decision", enum_column("egress_decision", "approve", "request_changes", "reject"), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("override_reason", sa.Text(), nullable=False),
        sa.Column("decided_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("file_id", "steward", name="uq_egress_review_once"),
    )
    op.create_index("ix_egress_reviews_file_id", "egress_reviews", ["file_id"])
    op.create_index("ix_egress_reviews_steward", "egress_reviews", ["steward"])
    op.create_table(
        "egress_downloads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("file_id", sa.Integer(), sa.ForeignKey("egress_files.id", ondelete="CASCADE"), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_egress_downloads_file_id", "egress_downloads", ["file_id"])


def downgrade() -> None:
    for table in ("egress_downloads", "egress_reviews", "egress_files", "egress_file_groups", "egress_requests"):
        op.drop_table(table)
