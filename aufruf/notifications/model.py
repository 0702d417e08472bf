"""The outbox: messages written in the same transaction as the change that causes them.

A row says what to send, about which appointment, in which language; never the rendered
text and never a token (the text and links are derived at send time).

Status: queued (waiting, maybe until `due_at` after a failed try) → sending (claimed by a
worker until `lease_until`; a worker that dies leaves it to be claimed again) → sent | failed
(a permanent SMTP answer, in `last_error`) | kept (not sent: no SMTP configured, or no
address to send to; readable by staff).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from aufruf.db import Base, Texts, UTCDateTime

STATUSES = ("queued", "sending", "sent", "failed", "kept")


class OutboxMessage(Base):
    __tablename__ = "outbox_message"
    __table_args__ = (Index("ix_outbox_message_status_due", "status", "due_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(40))  # e.g. "cancelled_by_office"
    appointment_id: Mapped[int | None] = mapped_column(
        ForeignKey("appointment.id", ondelete="SET NULL"), nullable=True, index=True
    )
    language: Mapped[str] = mapped_column(String(8), default="de")
    details: Mapped[dict[str, str]] = mapped_column(Texts, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # makes a message that must exist once (a reminder) unique: "reminder:{id}:{sequence}"
    dedupe_key: Mapped[str | None] = mapped_column(String(80), nullable=True, unique=True)
