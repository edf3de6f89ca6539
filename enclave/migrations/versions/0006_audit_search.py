"""audit_events: indexes on actor and target, so the admin pages search a large log by person or project

Revision ID: 0006_audit_search
Revises: 0005_project_register
"""
from alembic import op

revision = "0006_audit_search"
down_revision = "0005_project_register"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(op.f("ix_audit_events_actor"), "audit_events", ["actor"], unique=False)
    op.create_index(op.f("ix_audit_events_target"), "audit_events", ["target"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_audit_events_target"), table_name="audit_events")
    op.drop_index(op.f("ix_audit_events_actor"), table_name="audit_events")
