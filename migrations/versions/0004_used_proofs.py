"""Proofs of work already accepted, so none is accepted twice

Revision ID: 0004_used_proofs
Revises: 0003_print_jobs
Create Date: 2026-12-01 19:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_used_proofs"
down_revision: str | None = "0003_print_jobs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "used_proof",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_used_proof")),
    )
    with op.batch_alter_table("used_proof", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_used_proof_expires_at"), ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("used_proof", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_used_proof_expires_at"))
    op.drop_table("used_proof")
