"""The office directory, appointments and claimed capacity, the live queue, staff and devices, the outbox

Revision ID: 0001
Revises:
Create Date: 2026-11-22 05:08:38.031602
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "authority",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.JSON(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_authority")),
    )
    op.create_table(
        "login_failures",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_login_failures")),
    )
    with op.batch_alter_table("login_failures", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_login_failures_window_start"), ["window_start"], unique=False
        )

    op.create_table(
        "rate_limit_hit",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key", "window_start", name=op.f("pk_rate_limit_hit")),
    )
    op.create_table(
        "service_group",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("letter", sa.String(length=1), nullable=False),
        sa.Column("name", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_group")),
    )
    op.create_table(
        "staff_user",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "role IN ('clerk', 'supervisor', 'admin')", name=op.f("ck_staff_user_role_known")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_user")),
        sa.UniqueConstraint("username", name=op.f("uq_staff_user_username")),
    )
    op.create_table(
        "location",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("authority_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.JSON(), nullable=False),
        sa.Column("note", sa.JSON(), nullable=False),
        sa.Column("address", sa.String(length=300), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("holiday_state", sa.String(length=8), nullable=True),
        sa.Column("slot_minutes", sa.Integer(), nullable=False),
        sa.Column("lead_minutes", sa.Integer(), nullable=False),
        sa.Column("horizon_days", sa.Integer(), nullable=False),
        sa.Column("cancel_holdback_minutes", sa.Integer(), nullable=False),
        sa.Column("double_opt_in", sa.Boolean(), nullable=False),
        sa.Column("queue", sa.JSON(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.CheckConstraint("horizon_days >= 0", name=op.f("ck_location_horizon_not_negative")),
        sa.CheckConstraint("lead_minutes >= 0", name=op.f("ck_location_lead_not_negative")),
        sa.CheckConstraint("slot_minutes IN (5, 10, 15)", name=op.f("ck_location_slot_grid")),
        sa.ForeignKeyConstraint(
            ["authority_id"], ["authority.id"], name=op.f("fk_location_authority_id_authority")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_location")),
    )
    with op.batch_alter_table("location", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_location_authority_id"), ["authority_id"], unique=False
        )

    op.create_table(
        "service",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("authority_id", sa.String(length=64), nullable=False),
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.JSON(), nullable=False),
        sa.Column("bring", sa.JSON(), nullable=False),
        sa.Column("note", sa.JSON(), nullable=False),
        sa.Column("duration_minutes", sa.Integer(), nullable=False),
        sa.Column("max_quantity", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.CheckConstraint("duration_minutes > 0", name=op.f("ck_service_duration_positive")),
        sa.CheckConstraint("max_quantity >= 1", name=op.f("ck_service_max_quantity_positive")),
        sa.ForeignKeyConstraint(
            ["authority_id"], ["authority.id"], name=op.f("fk_service_authority_id_authority")
        ),
        sa.ForeignKeyConstraint(
            ["group_id"], ["service_group.id"], name=op.f("fk_service_group_id_service_group")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service")),
    )
    with op.batch_alter_table("service", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_service_authority_id"), ["authority_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_service_group_id"), ["group_id"], unique=False)

    op.create_table(
        "staff_known_address",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["staff_user.id"], name=op.f("fk_staff_known_address_user_id_staff_user")
        ),
        sa.PrimaryKeyConstraint("user_id", "address", name=op.f("pk_staff_known_address")),
    )
    op.create_table(
        "staff_session",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["staff_user.id"], name=op.f("fk_staff_session_user_id_staff_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_session")),
    )
    with op.batch_alter_table("staff_session", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_staff_session_expires_at"), ["expires_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_staff_session_user_id"), ["user_id"], unique=False)

    op.create_table(
        "appointment",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("location_id", sa.String(length=64), nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("code", sa.String(length=6), nullable=False),
        sa.Column("nonce", sa.String(length=32), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("pending_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_by", sa.String(length=16), nullable=True),
        sa.Column("cancel_reason", sa.String(length=500), nullable=True),
        sa.Column("release_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("booked_by", sa.String(length=16), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'confirmed', 'checked_in', 'completed', 'no_show', 'expired', 'cancelled')",
            name=op.f("ck_appointment_status_known"),
        ),
        sa.CheckConstraint("start_at < end_at", name=op.f("ck_appointment_start_before_end")),
        sa.ForeignKeyConstraint(
            ["location_id"], ["location.id"], name=op.f("fk_appointment_location_id_location")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appointment")),
    )
    with op.batch_alter_table("appointment", schema=None) as batch_op:
        batch_op.create_index(
            "ix_appointment_location_start", ["location_id", "start_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_appointment_release_at"), ["release_at"], unique=False)
        batch_op.create_index(
            "uq_appointment_active_code",
            ["code"],
            unique=True,
            postgresql_where=sa.text("status IN ('pending', 'confirmed', 'checked_in')"),
            sqlite_where=sa.text("status IN ('pending', 'confirmed', 'checked_in')"),
        )

    op.create_table(
        "availability_version",
        sa.Column("location_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("rules_version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["location_id"],
            ["location.id"],
            name=op.f("fk_availability_version_location_id_location"),
        ),
        sa.PrimaryKeyConstraint("location_id", name=op.f("pk_availability_version")),
    )
    op.create_table(
        "capacity_usage",
        sa.Column("location_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("service_id", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used", sa.Integer(), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('slot', 'day', 'start')", name=op.f("ck_capacity_usage_kind_known")
        ),
        sa.CheckConstraint("used <= capacity", name=op.f("ck_capacity_usage_used_within_capacity")),
        sa.CheckConstraint("used >= 0", name=op.f("ck_capacity_usage_used_not_negative")),
        sa.ForeignKeyConstraint(
            ["location_id"], ["location.id"], name=op.f("fk_capacity_usage_location_id_location")
        ),
        sa.PrimaryKeyConstraint(
            "location_id", "kind", "service_id", "at", name=op.f("pk_capacity_usage")
        ),
    )
    op.create_table(
        "closure",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("location_id", sa.String(length=64), nullable=False),
        sa.Column("first_day", sa.Date(), nullable=False),
        sa.Column("last_day", sa.Date(), nullable=False),
        sa.Column("reason", sa.JSON(), nullable=False),
        sa.CheckConstraint("first_day <= last_day", name=op.f("ck_closure_range_order")),
        sa.ForeignKeyConstraint(
            ["location_id"], ["location.id"], name=op.f("fk_closure_location_id_location")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_closure")),
    )
    with op.batch_alter_table("closure", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_closure_location_id"), ["location_id"], unique=False)

    op.create_table(
        "counter",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("location_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["location_id"], ["location.id"], name=op.f("fk_counter_location_id_location")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_counter")),
    )
    with op.batch_alter_table("counter", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_counter_location_id"), ["location_id"], unique=False)

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
        "location_service",
        sa.Column("location_id", sa.String(length=64), nullable=False),
        sa.Column("service_id", sa.String(length=64), nullable=False),
        sa.Column("duration_minutes", sa.Integer(), nullable=True),
        sa.Column("daily_cap", sa.Integer(), nullable=True),
        sa.Column("parallel_cap", sa.Integer(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["location_id"], ["location.id"], name=op.f("fk_location_service_location_id_location")
        ),
        sa.ForeignKeyConstraint(
            ["service_id"], ["service.id"], name=op.f("fk_location_service_service_id_service")
        ),
        sa.PrimaryKeyConstraint("location_id", "service_id", name=op.f("pk_location_service")),
    )
    op.create_table(
        "opening_window",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("location_id", sa.String(length=64), nullable=False),
        sa.Column("weekday", sa.Integer(), nullable=False),
        sa.Column("opens", sa.Time(), nullable=False),
        sa.Column("closes", sa.Time(), nullable=False),
        sa.Column("appointment_counters", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "appointment_counters >= 0", name=op.f("ck_opening_window_counters_not_negative")
        ),
        sa.CheckConstraint("opens < closes", name=op.f("ck_opening_window_opens_before_closes")),
        sa.CheckConstraint("weekday BETWEEN 0 AND 6", name=op.f("ck_opening_window_weekday_range")),
        sa.ForeignKeyConstraint(
            ["location_id"], ["location.id"], name=op.f("fk_opening_window_location_id_location")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_opening_window")),
    )
    with op.batch_alter_table("opening_window", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_opening_window_location_id"), ["location_id"], unique=False
        )

    op.create_table(
        "printer",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("location_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("paper_width_mm", sa.Integer(), nullable=False),
        sa.Column("code_page", sa.String(length=16), nullable=False),
        sa.Column("qr_mode", sa.String(length=8), nullable=False),
        sa.Column("image_impl", sa.String(length=24), nullable=False),
        sa.Column("connection", sa.String(length=8), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.CheckConstraint(
            "connection IN ('agent', 'direct')", name=op.f("ck_printer_connection_kind")
        ),
        sa.CheckConstraint("qr_mode IN ('native', 'image')", name=op.f("ck_printer_qr_mode_kind")),
        sa.CheckConstraint("paper_width_mm IN (58, 80)", name=op.f("ck_printer_paper_width")),
        sa.ForeignKeyConstraint(
            ["location_id"], ["location.id"], name=op.f("fk_printer_location_id_location")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_printer")),
    )
    with op.batch_alter_table("printer", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_printer_location_id"), ["location_id"], unique=False)

    op.create_table(
        "staff_user_location",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("location_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["location_id"],
            ["location.id"],
            name=op.f("fk_staff_user_location_location_id_location"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["staff_user.id"], name=op.f("fk_staff_user_location_user_id_staff_user")
        ),
        sa.PrimaryKeyConstraint("user_id", "location_id", name=op.f("pk_staff_user_location")),
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
        "appointment_claim",
        sa.Column("appointment_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("service_id", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["appointment_id"],
            ["appointment.id"],
            name=op.f("fk_appointment_claim_appointment_id_appointment"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "appointment_id", "kind", "service_id", "at", name=op.f("pk_appointment_claim")
        ),
    )
    op.create_table(
        "appointment_service",
        sa.Column("appointment_id", sa.Integer(), nullable=False),
        sa.Column("service_id", sa.String(length=64), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.CheckConstraint("quantity >= 1", name=op.f("ck_appointment_service_quantity_positive")),
        sa.ForeignKeyConstraint(
            ["appointment_id"],
            ["appointment.id"],
            name=op.f("fk_appointment_service_appointment_id_appointment"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["service_id"], ["service.id"], name=op.f("fk_appointment_service_service_id_service")
        ),
        sa.PrimaryKeyConstraint(
            "appointment_id", "service_id", name=op.f("pk_appointment_service")
        ),
    )
    op.create_table(
        "contact",
        sa.Column("appointment_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("email_key", sa.String(length=254), nullable=True),
        sa.Column("phone", sa.String(length=40), nullable=True),
        sa.Column("delete_after", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["appointment_id"],
            ["appointment.id"],
            name=op.f("fk_contact_appointment_id_appointment"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("appointment_id", name=op.f("pk_contact")),
    )
    with op.batch_alter_table("contact", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_contact_delete_after"), ["delete_after"], unique=False)
        batch_op.create_index(batch_op.f("ix_contact_email_key"), ["email_key"], unique=False)

    op.create_table(
        "counter_service",
        sa.Column("counter_id", sa.String(length=64), nullable=False),
        sa.Column("service_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["counter_id"], ["counter.id"], name=op.f("fk_counter_service_counter_id_counter")
        ),
        sa.ForeignKeyConstraint(
            ["service_id"], ["service.id"], name=op.f("fk_counter_service_service_id_service")
        ),
        sa.PrimaryKeyConstraint("counter_id", "service_id", name=op.f("pk_counter_service")),
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
        "kiosk",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("location_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("printer_id", sa.String(length=64), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["location_id"], ["location.id"], name=op.f("fk_kiosk_location_id_location")
        ),
        sa.ForeignKeyConstraint(
            ["printer_id"], ["printer.id"], name=op.f("fk_kiosk_printer_id_printer")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kiosk")),
    )
    with op.batch_alter_table("kiosk", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_kiosk_location_id"), ["location_id"], unique=False)

    op.create_table(
        "outbox_message",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("appointment_id", sa.Integer(), nullable=True),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["appointment_id"],
            ["appointment.id"],
            name=op.f("fk_outbox_message_appointment_id_appointment"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_message")),
    )
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_outbox_message_appointment_id"), ["appointment_id"], unique=False
        )
        batch_op.create_index("ix_outbox_message_status_due", ["status", "due_at"], unique=False)

    op.create_table(
        "api_token",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=8), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("location_id", sa.String(length=64), nullable=True),
        sa.Column("counter_id", sa.String(length=64), nullable=True),
        sa.Column("kiosk_id", sa.String(length=64), nullable=True),
        sa.Column("printer_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "role IN ('kiosk', 'display', 'printer', 'clerk', 'admin')",
            name=op.f("ck_api_token_role_known"),
        ),
        sa.ForeignKeyConstraint(
            ["counter_id"], ["counter.id"], name=op.f("fk_api_token_counter_id_counter")
        ),
        sa.ForeignKeyConstraint(
            ["kiosk_id"], ["kiosk.id"], name=op.f("fk_api_token_kiosk_id_kiosk")
        ),
        sa.ForeignKeyConstraint(
            ["location_id"], ["location.id"], name=op.f("fk_api_token_location_id_location")
        ),
        sa.ForeignKeyConstraint(
            ["printer_id"], ["printer.id"], name=op.f("fk_api_token_printer_id_printer")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_token")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_token_token_hash")),
    )
    with op.batch_alter_table("api_token", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_token_location_id"), ["location_id"], unique=False)

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
    with op.batch_alter_table("api_token", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_token_location_id"))

    op.drop_table("api_token")
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_message_status_due")
        batch_op.drop_index(batch_op.f("ix_outbox_message_appointment_id"))

    op.drop_table("outbox_message")
    with op.batch_alter_table("kiosk", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_kiosk_location_id"))

    op.drop_table("kiosk")
    with op.batch_alter_table("counter_session", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_counter_session_counter_id"))

    op.drop_table("counter_session")
    op.drop_table("counter_service")
    with op.batch_alter_table("contact", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_contact_email_key"))
        batch_op.drop_index(batch_op.f("ix_contact_delete_after"))

    op.drop_table("contact")
    op.drop_table("appointment_service")
    op.drop_table("appointment_claim")
    op.drop_table("ticket_number")
    op.drop_table("staff_user_location")
    with op.batch_alter_table("printer", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_printer_location_id"))

    op.drop_table("printer")
    with op.batch_alter_table("opening_window", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_opening_window_location_id"))

    op.drop_table("opening_window")
    op.drop_table("location_service")
    op.drop_table("location_sequence")
    with op.batch_alter_table("counter", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_counter_location_id"))

    op.drop_table("counter")
    with op.batch_alter_table("closure", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_closure_location_id"))

    op.drop_table("closure")
    op.drop_table("capacity_usage")
    op.drop_table("availability_version")
    with op.batch_alter_table("appointment", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_appointment_active_code",
            postgresql_where=sa.text("status IN ('pending', 'confirmed', 'checked_in')"),
            sqlite_where=sa.text("status IN ('pending', 'confirmed', 'checked_in')"),
        )
        batch_op.drop_index(batch_op.f("ix_appointment_release_at"))
        batch_op.drop_index("ix_appointment_location_start")

    op.drop_table("appointment")
    with op.batch_alter_table("staff_session", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_staff_session_user_id"))
        batch_op.drop_index(batch_op.f("ix_staff_session_expires_at"))

    op.drop_table("staff_session")
    op.drop_table("staff_known_address")
    with op.batch_alter_table("service", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_service_group_id"))
        batch_op.drop_index(batch_op.f("ix_service_authority_id"))

    op.drop_table("service")
    with op.batch_alter_table("location", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_location_authority_id"))

    op.drop_table("location")
    op.drop_table("staff_user")
    op.drop_table("service_group")
    op.drop_table("rate_limit_hit")
    with op.batch_alter_table("login_failures", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_login_failures_window_start"))

    op.drop_table("login_failures")
    op.drop_table("authority")
