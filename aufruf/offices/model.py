"""The office directory: authorities, locations, services, counters, devices, hours, closures.

Rows that bookings, tickets or events refer to are deactivated (`active = False`), never deleted.
Texts a citizen sees are `Texts` columns: {"de": ..., "en": ...}.
"""

from __future__ import annotations

from datetime import date, time

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Integer,
    String,
    Time,
)
from sqlalchemy.orm import Mapped, mapped_column

from aufruf.db import Base, Texts

SLUG = 64


class Authority(Base):
    __tablename__ = "authority"

    id: Mapped[str] = mapped_column(String(SLUG), primary_key=True)
    name: Mapped[dict[str, str]] = mapped_column(Texts)
    position: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class ServiceGroup(Base):
    """Services that share a ticket letter (A001, A002, ...)."""

    __tablename__ = "service_group"

    id: Mapped[str] = mapped_column(String(SLUG), primary_key=True)
    letter: Mapped[str] = mapped_column(String(1))
    name: Mapped[dict[str, str]] = mapped_column(Texts)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Service(Base):
    __tablename__ = "service"
    __table_args__ = (
        CheckConstraint("duration_minutes > 0", name="duration_positive"),
        CheckConstraint("max_quantity >= 1", name="max_quantity_positive"),
    )

    id: Mapped[str] = mapped_column(String(SLUG), primary_key=True)
    authority_id: Mapped[str] = mapped_column(ForeignKey("authority.id"), index=True)
    group_id: Mapped[str] = mapped_column(ForeignKey("service_group.id"), index=True)
    name: Mapped[dict[str, str]] = mapped_column(Texts)
    bring: Mapped[dict[str, str]] = mapped_column(Texts, default=dict)
    note: Mapped[dict[str, str]] = mapped_column(Texts, default=dict)
    duration_minutes: Mapped[int] = mapped_column(Integer)
    max_quantity: Mapped[int] = mapped_column(Integer, default=1)
    position: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Location(Base):
    __tablename__ = "location"
    __table_args__ = (
        CheckConstraint("slot_minutes IN (5, 10, 15)", name="slot_grid"),
        CheckConstraint("lead_minutes >= 0", name="lead_not_negative"),
        CheckConstraint("horizon_days >= 0", name="horizon_not_negative"),
    )

    id: Mapped[str] = mapped_column(String(SLUG), primary_key=True)
    authority_id: Mapped[str] = mapped_column(ForeignKey("authority.id"), index=True)
    name: Mapped[dict[str, str]] = mapped_column(Texts)
    note: Mapped[dict[str, str]] = mapped_column(Texts, default=dict)
    address: Mapped[str] = mapped_column(String(300))
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/Berlin")
    holiday_state: Mapped[str | None] = mapped_column(String(8), nullable=True)
    slot_minutes: Mapped[int] = mapped_column(Integer, default=10)
    lead_minutes: Mapped[int] = mapped_column(Integer, default=120)
    horizon_days: Mapped[int] = mapped_column(Integer, default=14)
    cancel_holdback_minutes: Mapped[int] = mapped_column(Integer, default=0)
    double_opt_in: Mapped[bool] = mapped_column(Boolean, default=False)
    # the live queue's settings (offices file [locations.queue]); {} means the defaults
    queue: Mapped[dict] = mapped_column(JSON, default=dict)
    position: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class LocationService(Base):
    """A service offered at a location, with its local duration and caps."""

    __tablename__ = "location_service"

    location_id: Mapped[str] = mapped_column(ForeignKey("location.id"), primary_key=True)
    service_id: Mapped[str] = mapped_column(ForeignKey("service.id"), primary_key=True)
    duration_minutes: Mapped[int | None] = mapped_column(Integer, nullable=True)
    daily_cap: Mapped[int | None] = mapped_column(Integer, nullable=True)
    parallel_cap: Mapped[int | None] = mapped_column(Integer, nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class OpeningWindow(Base):
    """One window of a weekday's opening hours, in the location's local time."""

    __tablename__ = "opening_window"
    __table_args__ = (
        CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday_range"),
        CheckConstraint("opens < closes", name="opens_before_closes"),
        CheckConstraint("appointment_counters >= 0", name="counters_not_negative"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    location_id: Mapped[str] = mapped_column(ForeignKey("location.id"), index=True)
    weekday: Mapped[int] = mapped_column(Integer)  # Monday = 0
    opens: Mapped[time] = mapped_column(Time)
    closes: Mapped[time] = mapped_column(Time)
    appointment_counters: Mapped[int] = mapped_column(Integer)


class Closure(Base):
    """Days on which a location takes no appointments (inclusive range of local dates)."""

    __tablename__ = "closure"
    __table_args__ = (CheckConstraint("first_day <= last_day", name="range_order"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    location_id: Mapped[str] = mapped_column(ForeignKey("location.id"), index=True)
    first_day: Mapped[date] = mapped_column(Date)
    last_day: Mapped[date] = mapped_column(Date)
    reason: Mapped[dict[str, str]] = mapped_column(Texts, default=dict)


class Counter(Base):
    __tablename__ = "counter"

    id: Mapped[str] = mapped_column(String(SLUG), primary_key=True)
    location_id: Mapped[str] = mapped_column(ForeignKey("location.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    position: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class CounterService(Base):
    __tablename__ = "counter_service"

    counter_id: Mapped[str] = mapped_column(ForeignKey("counter.id"), primary_key=True)
    service_id: Mapped[str] = mapped_column(ForeignKey("service.id"), primary_key=True)


class Printer(Base):
    __tablename__ = "printer"
    __table_args__ = (
        CheckConstraint("paper_width_mm IN (58, 80)", name="paper_width"),
        CheckConstraint("connection IN ('agent', 'direct')", name="connection_kind"),
        CheckConstraint("qr_mode IN ('native', 'image')", name="qr_mode_kind"),
    )

    id: Mapped[str] = mapped_column(String(SLUG), primary_key=True)
    location_id: Mapped[str] = mapped_column(ForeignKey("location.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    paper_width_mm: Mapped[int] = mapped_column(Integer, default=80)
    code_page: Mapped[str] = mapped_column(String(16), default="CP858")
    qr_mode: Mapped[str] = mapped_column(String(8), default="native")
    image_impl: Mapped[str] = mapped_column(String(24), default="bitImageRaster")
    connection: Mapped[str] = mapped_column(String(8), default="agent")
    target: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # a job not started this long after it was queued expires (never printed late)
    print_deadline_seconds: Mapped[int] = mapped_column(Integer, default=60, server_default="60")
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Kiosk(Base):
    __tablename__ = "kiosk"

    id: Mapped[str] = mapped_column(String(SLUG), primary_key=True)
    location_id: Mapped[str] = mapped_column(ForeignKey("location.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    printer_id: Mapped[str | None] = mapped_column(ForeignKey("printer.id"), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
