"""The outbox delivers: leases, errors, sent time, a key for messages that exist once (reminders)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 05:32:22.200629
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("last_error", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("dedupe_key", sa.String(length=80), nullable=True))
        batch_op.create_unique_constraint(
            batch_op.f("uq_outbox_message_dedupe_key"), ["dedupe_key"]
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_outbox_message_dedupe_key"), type_="unique")
        batch_op.drop_column("dedupe_key")
        batch_op.drop_column("sent_at")
        batch_op.drop_column("last_error")
        batch_op.drop_column("lease_until")
