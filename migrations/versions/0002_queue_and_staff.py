"""The live queue: tickets, numbers, counters' state, events; staff accounts and device tokens

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 04:35:12.930693
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "location_sequence",
        sa.Column("location_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["location_id"], ["location.id"], name=op.f("fk_location_sequence_location_id_location")
        ),
        sa.PrimaryKeyConstraint("location_id", name=op.f("pk_location_sequence")),
    )
    op.create_table(
        "ticket_number",
        sa.Column("location_id", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("letter", sa.String(length=1), nullable=False),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["location_id"], ["location.id"], name=op.f("fk_ticket_number_location_id_location")
        ),
        sa.PrimaryKeyConstraint("location_id", "day", "letter", name=op.f("pk_ticket_number")),
    )
    op.create_table(
        "counter_session",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("counter_id", sa.String(length=64), nullable=False),
        sa.Column("clerk", sa.String(length=100), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["counter_id"], ["counter.id"], name=op.f("fk_counter_session_counter_id_counter")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_counter_session")),
    )
    with op.batch_alter_table("counter_session", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_counter_session_counter_id"), ["counter_id"], unique=False
        )

    op.create_table(
        "ticket",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("location_id", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("number", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("nonce", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("kiosk_id", sa.String(length=64), nullable=True),
        sa.Column("appointment_id", sa.Integer(), nullable=True),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("arrived_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("counter_id", sa.String(length=64), nullable=True),
        sa.Column("call_count", sa.Integer(), nullable=False),
        sa.Column("called_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.String(length=200), nullable=True),
        sa.CheckConstraint(
            "status IN ('waiting', 'called', 'serving', 'done', 'no_show', 'cancelled', 'closed')",
            name=op.f("ck_ticket_status_known"),
        ),
        sa.ForeignKeyConstraint(
            ["appointment_id"],
            ["appointment.id"],
            name=op.f("fk_ticket_appointment_id_appointment"),
        ),
        sa.ForeignKeyConstraint(
            ["counter_id"], ["counter.id"], name=op.f("fk_ticket_counter_id_counter")
        ),
        sa.ForeignKeyConstraint(["kiosk_id"], ["kiosk.id"], name=op.f("fk_ticket_kiosk_id_kiosk")),
        sa.ForeignKeyConstraint(
            ["location_id"], ["location.id"], name=op.f("fk_ticket_location_id_location")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket")),
    )
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.create_index("ix_ticket_location_status", ["location_id", "status"], unique=False)
        batch_op.create_index(
            "uq_ticket_appointment",
            ["appointment_id"],
            unique=True,
            postgresql_where=sa.text("appointment_id IS NOT NULL"),
            sqlite_where=sa.text("appointment_id IS NOT NULL"),
        )
        batch_op.create_index(
            "uq_ticket_location_day_number", ["location_id", "day", "number"], unique=True
        )

    op.create_table(
        "counter_state",
        sa.Column("counter_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("current_ticket_id", sa.Integer(), nullable=True),
        sa.Column("clerk", sa.String(length=100), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('open', 'paused', 'closed')", name=op.f("ck_counter_state_status_known")
        ),
        sa.ForeignKeyConstraint(
            ["counter_id"], ["counter.id"], name=op.f("fk_counter_state_counter_id_counter")
        ),
        sa.ForeignKeyConstraint(
            ["current_ticket_id"],
            ["ticket.id"],
            name=op.f("fk_counter_state_current_ticket_id_ticket"),
        ),
        sa.PrimaryKeyConstraint("counter_id", name=op.f("pk_counter_state")),
        sa.UniqueConstraint("current_ticket_id", name=op.f("uq_counter_state_current_ticket_id")),
    )
    op.create_table(
        "queue_event",
        sa.Column("location_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("number", sa.String(length=8), nullable=True),
        sa.Column("services", sa.JSON(), nullable=False),
        sa.Column("counter_id", sa.String(length=64), nullable=True),
        sa.Column("actor", sa.String(length=120), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["counter_id"], ["counter.id"], name=op.f("fk_queue_event_counter_id_counter")
        ),
        sa.ForeignKeyConstraint(
            ["location_id"], ["location.id"], name=op.f("fk_queue_event_location_id_location")
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["ticket.id"], name=op.f("fk_queue_event_ticket_id_ticket")
        ),
        sa.PrimaryKeyConstraint("location_id", "seq", name=op.f("pk_queue_event")),
    )
    with op.batch_alter_table("queue_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_queue_event_ticket_id"), ["ticket_id"], unique=False)

    op.create_table(
        "ticket_service",
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("service_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["service_id"], ["service.id"], name=op.f("fk_ticket_service_service_id_service")
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["ticket.id"],
            name=op.f("fk_ticket_service_ticket_id_ticket"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("ticket_id", "service_id", name=op.f("pk_ticket_service")),
    )


def downgrade() -> None:
    op.drop_table("ticket_service")
    with op.batch_alter_table("queue_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_queue_event_ticket_id"))

    op.drop_table("queue_event")
    op.drop_table("counter_state")
    with op.batch_alter_table("ticket", schema=None) as batch_op:
        batch_op.drop_index("uq_ticket_location_day_number")
        batch_op.drop_index(
            "uq_ticket_appointment",
            postgresql_where=sa.text("appointment_id IS NOT NULL"),
            sqlite_where=sa.text("appointment_id IS NOT NULL"),
        )
        batch_op.drop_index("ix_ticket_location_status")

    op.drop_table("ticket")
    with op.batch_alter_table("counter_session", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_counter_session_counter_id"))

    op.drop_table("counter_session")
    op.drop_table("ticket_number")
    op.drop_table("location_sequence")
