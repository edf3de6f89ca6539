"""notifications: people's e-mail address and preference, and the queue of messages owed

Revision ID: 0004_notifications
Revises: 0003_packages
"""
import sqlalchemy as sa
from alembic import op

revision = "0004_notifications"
down_revision = "0003_packages"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("email", sa.String(length=254), nullable=True))
        batch.add_column(sa.Column("notify", sa.String(length=10), nullable=False, server_default="immediate"))
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("link", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_notifications_username"), "notifications", ["username"], unique=False)
    op.create_index(op.f("ix_notifications_created_at"), "notifications", ["created_at"], unique=False)
    op.create_index(op.f("ix_notifications_sent_at"), "notifications", ["sent_at"], unique=False)


def downgrade() -> None:
    op.drop_table("notifications")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("notify")
        batch.drop_column("email")
