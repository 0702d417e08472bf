"""Appointments, the citizen's contact data (kept apart, with a deletion date), claimed capacity."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from aufruf.db import Base, UTCDateTime

ACTIVE_STATUSES = ("pending", "confirmed", "checked_in")
STATUSES = ("pending", "confirmed", "checked_in", "completed", "no_show", "expired", "cancelled")
_ACTIVE_SQL = "status IN ('pending', 'confirmed', 'checked_in')"


class Appointment(Base):
    __tablename__ = "appointment"
    __table_args__ = (
        CheckConstraint("start_at < end_at", name="start_before_end"),
        CheckConstraint(
            "status IN (" + ", ".join(f"'{s}'" for s in STATUSES) + ")", name="status_known"
        ),
        # the code is unique among active appointments: it is what a citizen types at the kiosk
        Index(
            "uq_appointment_active_code",
            "code",
            unique=True,
            postgresql_where=text(_ACTIVE_SQL),
            sqlite_where=text(_ACTIVE_SQL),
        ),
        Index("ix_appointment_location_start", "location_id", "start_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    location_id: Mapped[str] = mapped_column(ForeignKey("location.id"))
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16))
    code: Mapped[str] = mapped_column(String(6))
    nonce: Mapped[str] = mapped_column(String(32))  # with the secret key derives the token
    language: Mapped[str] = mapped_column(String(8), default="de")
    sequence: Mapped[int] = mapped_column(Integer, default=0)  # raised on every change (iCalendar)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    pending_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    cancelled_by: Mapped[str | None] = mapped_column(
        String(16), nullable=True
    )  # citizen|office|system
    cancel_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    # capacity still held after a cancellation (hold-back against slot trading) until this instant
    release_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)
    booked_by: Mapped[str] = mapped_column(String(16), default="citizen")  # citizen|staff


class AppointmentService(Base):
    __tablename__ = "appointment_service"
    __table_args__ = (CheckConstraint("quantity >= 1", name="quantity_positive"),)

    appointment_id: Mapped[int] = mapped_column(
        ForeignKey("appointment.id", ondelete="CASCADE"), primary_key=True
    )
    service_id: Mapped[str] = mapped_column(ForeignKey("service.id"), primary_key=True)
    quantity: Mapped[int] = mapped_column(Integer)


class Contact(Base):
    """Personal data of an appointment, deleted after `delete_after` (ARCHITECTURE.md rule 3)."""

    __tablename__ = "contact"

    appointment_id: Mapped[int] = mapped_column(
        ForeignKey("appointment.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    email_key: Mapped[str | None] = mapped_column(String(254), nullable=True, index=True)
    phone: Mapped[str | None] = mapped_column(String(40), nullable=True)
    delete_after: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class CapacityUsage(Base):
    """Claimed places, one row per (location, kind, service, instant).

    kind "slot": appointment places in one grid slot (service ""), capacity = counters
    taking appointments then; kind "day": units of a capped service on a local day (`at` =
    local midnight); kind "start": units of a capped service starting at one instant.
    A claim is `used = used + n WHERE used + n <= capacity` in the booking's transaction.
    """

    __tablename__ = "capacity_usage"
    __table_args__ = (
        CheckConstraint("used >= 0", name="used_not_negative"),
        CheckConstraint("used <= capacity", name="used_within_capacity"),
        CheckConstraint("kind IN ('slot', 'day', 'start')", name="kind_known"),
    )

    location_id: Mapped[str] = mapped_column(ForeignKey("location.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    service_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    used: Mapped[int] = mapped_column(Integer)
    capacity: Mapped[int] = mapped_column(Integer)


class AppointmentClaim(Base):
    """The places an appointment holds, so cancelling releases exactly those, whatever
    the rules say by then."""

    __tablename__ = "appointment_claim"

    appointment_id: Mapped[int] = mapped_column(
        ForeignKey("appointment.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    service_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    n: Mapped[int] = mapped_column(Integer)


class AvailabilityVersion(Base):
    """Raised by every change of a location's bookings or rules, so every instance can tell
    whether the availability it computed earlier still holds."""

    __tablename__ = "availability_version"

    location_id: Mapped[str] = mapped_column(ForeignKey("location.id"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)  # any change: bookings, cancellations, rules
    rules_version: Mapped[int] = mapped_column(Integer, default=1)  # the rules alone (imports)


class RateLimitHit(Base):
    """Fixed-window counters for rate limits when no Redis is configured."""

    __tablename__ = "rate_limit_hit"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    hits: Mapped[int] = mapped_column(Integer)


class UsedProof(Base):
    """A proof of work that has been accepted, kept until its challenge expires, so that no
    proof is ever accepted twice."""

    __tablename__ = "used_proof"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)  # the challenge's signature
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
