"""A print job not started within its printer's deadline expires instead of printing late

Revision ID: 0005_print_deadline
Revises: 0004_used_proofs
Create Date: 2026-12-01 20:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_print_deadline"
down_revision: str | None = "0004_used_proofs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_STATUSES = "status IN ('queued', 'started', 'printed', 'interrupted', 'failed')"
NEW_STATUSES = "status IN ('queued', 'started', 'printed', 'interrupted', 'expired', 'failed')"


def upgrade() -> None:
    with op.batch_alter_table("printer", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("print_deadline_seconds", sa.Integer(), server_default="60", nullable=False)
        )
    with op.batch_alter_table("print_job", schema=None) as batch_op:
        batch_op.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.drop_constraint(batch_op.f("ck_print_job_status_known"), type_="check")
        batch_op.create_check_constraint(batch_op.f("ck_print_job_status_known"), NEW_STATUSES)


def downgrade() -> None:
    op.execute("UPDATE print_job SET status = 'failed' WHERE status = 'expired'")
    with op.batch_alter_table("print_job", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_print_job_status_known"), type_="check")
        batch_op.create_check_constraint(batch_op.f("ck_print_job_status_known"), OLD_STATUSES)
        batch_op.drop_column("expires_at")
    with op.batch_alter_table("printer", schema=None) as batch_op:
        batch_op.drop_column("print_deadline_seconds")
