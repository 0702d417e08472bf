"""Print jobs addressed to one printer, printed at most once; what the server knows of each printer

Revision ID: 0003_print_jobs
Revises: 0002
Create Date: 2026-12-01 18:46:27.050779
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_print_jobs"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "printer_status",
        sa.Column("printer_id", sa.String(length=64), nullable=False),
        sa.Column("online", sa.Boolean(), nullable=False),
        sa.Column("paper", sa.String(length=8), nullable=True),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=True),
        sa.Column("connected_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("problem", sa.String(length=300), nullable=True),
        sa.CheckConstraint(
            "paper IS NULL OR paper IN ('ok', 'low', 'out')",
            name=op.f("ck_printer_status_paper_known"),
        ),
        sa.ForeignKeyConstraint(
            ["printer_id"], ["printer.id"], name=op.f("fk_printer_status_printer_id_printer")
        ),
        sa.PrimaryKeyConstraint("printer_id", name=op.f("pk_printer_status")),
    )
    op.create_table(
        "print_job",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("printer_id", sa.String(length=64), nullable=False),
        sa.Column("location_id", sa.String(length=64), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=300), nullable=True),
        sa.Column("actor", sa.String(length=120), nullable=True),
        sa.Column("reprinted_by", sa.Integer(), nullable=True),
        sa.CheckConstraint("kind IN ('ticket', 'reprint')", name=op.f("ck_print_job_kind_known")),
        sa.CheckConstraint(
            "status IN ('queued', 'started', 'printed', 'interrupted', 'failed')",
            name=op.f("ck_print_job_status_known"),
        ),
        sa.ForeignKeyConstraint(
            ["location_id"], ["location.id"], name=op.f("fk_print_job_location_id_location")
        ),
        sa.ForeignKeyConstraint(
            ["printer_id"], ["printer.id"], name=op.f("fk_print_job_printer_id_printer")
        ),
        sa.ForeignKeyConstraint(
            ["reprinted_by"], ["print_job.id"], name=op.f("fk_print_job_reprinted_by_print_job")
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["ticket.id"], name=op.f("fk_print_job_ticket_id_ticket")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_print_job")),
    )
    with op.batch_alter_table("print_job", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_print_job_location_id"), ["location_id"], unique=False)
        batch_op.create_index("ix_print_job_printer_status", ["printer_id", "status"], unique=False)
        batch_op.create_index("ix_print_job_status_due", ["status", "due_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_print_job_ticket_id"), ["ticket_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("print_job", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_print_job_ticket_id"))
        batch_op.drop_index("ix_print_job_status_due")
        batch_op.drop_index("ix_print_job_printer_status")
        batch_op.drop_index(batch_op.f("ix_print_job_location_id"))

    op.drop_table("print_job")
    op.drop_table("printer_status")
