"""Tickets, their numbers, counters' live state and the queue's events.

Every change of a ticket or counter is one transaction that also writes a QueueEvent with the
location's next `seq`, taken under a row lock held to commit (so commit order is seq order).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from aufruf.db import Base, UTCDateTime

TICKET_STATUSES = ("waiting", "called", "serving", "done", "no_show", "cancelled", "closed")
COUNTER_STATUSES = ("open", "paused", "closed")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN (" + ", ".join(f"'{v}'" for v in values) + ")"


class Ticket(Base):
    __tablename__ = "ticket"
    __table_args__ = (
        CheckConstraint(_in("status", TICKET_STATUSES), name="status_known"),
        Index("ix_ticket_location_status", "location_id", "status"),
        Index("uq_ticket_location_day_number", "location_id", "day", "number", unique=True),
        # one ticket per appointment
        Index(
            "uq_ticket_appointment",
            "appointment_id",
            unique=True,
            postgresql_where=text("appointment_id IS NOT NULL"),
            sqlite_where=text("appointment_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    location_id: Mapped[str] = mapped_column(ForeignKey("location.id"))
    day: Mapped[date] = mapped_column(Date)  # the location's local day of issue
    number: Mapped[str] = mapped_column(String(8))  # "A001"
    status: Mapped[str] = mapped_column(String(16))
    nonce: Mapped[str] = mapped_column(String(32))  # derives the phone-view token
    source: Mapped[str] = mapped_column(String(16))  # kiosk | staff | checkin
    kiosk_id: Mapped[str | None] = mapped_column(ForeignKey("kiosk.id"), nullable=True)
    appointment_id: Mapped[int | None] = mapped_column(ForeignKey("appointment.id"), nullable=True)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    arrived_at: Mapped[datetime] = mapped_column(UTCDateTime)  # place in line (kept on transfer)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    counter_id: Mapped[str | None] = mapped_column(ForeignKey("counter.id"), nullable=True)
    call_count: Mapped[int] = mapped_column(Integer, default=0)
    called_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    end_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)


class TicketService(Base):
    """The services a ticket is for; a counter calls it only if it serves all of them."""

    __tablename__ = "ticket_service"

    ticket_id: Mapped[int] = mapped_column(
        ForeignKey("ticket.id", ondelete="CASCADE"), primary_key=True
    )
    service_id: Mapped[str] = mapped_column(ForeignKey("service.id"), primary_key=True)


class TicketNumber(Base):
    """The last number given per location, local day and letter: taken atomically."""

    __tablename__ = "ticket_number"

    location_id: Mapped[str] = mapped_column(ForeignKey("location.id"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    letter: Mapped[str] = mapped_column(String(1), primary_key=True)
    last: Mapped[int] = mapped_column(Integer)


class CounterState(Base):
    """A counter's live state: open, paused or closed; its current ticket; who sits there."""

    __tablename__ = "counter_state"
    __table_args__ = (CheckConstraint(_in("status", COUNTER_STATUSES), name="status_known"),)

    counter_id: Mapped[str] = mapped_column(ForeignKey("counter.id"), primary_key=True)
    status: Mapped[str] = mapped_column(String(8), default="closed")
    current_ticket_id: Mapped[int | None] = mapped_column(
        ForeignKey("ticket.id"), nullable=True, unique=True
    )
    clerk: Mapped[str | None] = mapped_column(String(100), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CounterSession(Base):
    """Who sat at which counter, and when."""

    __tablename__ = "counter_session"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    counter_id: Mapped[str] = mapped_column(ForeignKey("counter.id"), index=True)
    clerk: Mapped[str] = mapped_column(String(100))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class LocationSequence(Base):
    """The last event seq of a location; taking the next one locks the row until commit."""

    __tablename__ = "location_sequence"

    location_id: Mapped[str] = mapped_column(ForeignKey("location.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)


class QueueEvent(Base):
    """What happened, to which ticket (by id, never its token), where, by whom, when."""

    __tablename__ = "queue_event"

    location_id: Mapped[str] = mapped_column(ForeignKey("location.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(24))
    ticket_id: Mapped[int | None] = mapped_column(
        ForeignKey("ticket.id"), nullable=True, index=True
    )
    number: Mapped[str | None] = mapped_column(String(8), nullable=True)
    services: Mapped[list[str]] = mapped_column(JSON, default=list)
    counter_id: Mapped[str | None] = mapped_column(ForeignKey("counter.id"), nullable=True)
    actor: Mapped[str | None] = mapped_column(String(120), nullable=True)  # "user:anna", "kiosk:…"
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    data: Mapped[dict] = mapped_column(JSON, default=dict)
