"""offline package repository: package files and the allow-list

Revision ID: 0003_packages
Revises: 0002_guard
"""
import sqlalchemy as sa
from alembic import op

revision = "0003_packages"
down_revision = "0002_guard"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "package_files",
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("ecosystem", sa.String(length=10), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("requires", sa.Text(), nullable=False),
        sa.Column("requires_python", sa.String(length=100), nullable=False),
        sa.Column("bundle", sa.String(length=64), nullable=False),
        sa.Column("imported_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("filename"),
    )
    op.create_index(op.f("ix_package_files_name"), "package_files", ["name"], unique=False)
    op.create_table(
        "package_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=30), nullable=False),
        sa.Column("ecosystem", sa.String(length=10), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("versions", sa.String(length=100), nullable=False),
        sa.Column("allowed", sa.Boolean(), nullable=False),
        sa.Column("decided_by", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("decided_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("scope", "ecosystem", "name", name="uq_package_rule"),
    )


def downgrade() -> None:
    op.drop_table("package_rules")
    op.drop_index(op.f("ix_package_files_name"), table_name="package_files")
    op.drop_table("package_files")
