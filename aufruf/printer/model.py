"""Print jobs and what the server knows of each printer.

A `PrintJob` is written in the transaction of the ticket it prints (or of a reprint) and is
addressed to one printer. It holds what is needed to render the ticket at send time (the
ticket's id and the kind of print), never the bytes and never the ticket's secret token: the
token is derived again when the job is rendered (ARCHITECTURE.md rule 3).

Status, printed at most once:
- queued: waiting, maybe until `due_at` after a refused connection; `lease_until` marks the
  worker or agent socket that took it to send; it may start only before `expires_at` (the
  printer's `print_deadline_seconds` after it was queued);
- started: the connection to the printer was open and the bytes were about to go out;
  never sent again by itself;
- printed: the printer (or the agent) took all bytes;
- interrupted: started but cut off, or never acknowledged within a timeout; staff see it and
  reprint it with one click (`reprinted_by` is then the new job);
- expired: not started before `expires_at` (the printer was down): never printed afterwards,
  because the visitor was told no paper would come and has gone on without it; staff see it
  and print it again with one click, like an interrupted one;
- failed: not printed and not to be retried (the ticket is no longer active, the printer was
  removed); the reason in `last_error`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from aufruf.db import Base, UTCDateTime

JOB_STATUSES = ("queued", "started", "printed", "interrupted", "expired", "failed")
JOB_KINDS = ("ticket", "reprint")
PAPER_STATES = ("ok", "low", "out")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN (" + ", ".join(f"'{v}'" for v in values) + ")"


class PrintJob(Base):
    __tablename__ = "print_job"
    __table_args__ = (
        CheckConstraint(_in("status", JOB_STATUSES), name="status_known"),
        CheckConstraint(_in("kind", JOB_KINDS), name="kind_known"),
        Index("ix_print_job_printer_status", "printer_id", "status"),
        Index("ix_print_job_status_due", "status", "due_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    printer_id: Mapped[str] = mapped_column(ForeignKey("printer.id"))
    location_id: Mapped[str] = mapped_column(ForeignKey("location.id"), index=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16), default="ticket")
    status: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(300), nullable=True)
    actor: Mapped[str | None] = mapped_column(String(120), nullable=True)  # who asked: "kiosk:…"
    reprinted_by: Mapped[int | None] = mapped_column(ForeignKey("print_job.id"), nullable=True)


class PrinterStatus(Base):
    """What the server last heard of a printer: from the worker (direct printers) or from
    its agent's socket. `online` is only believed while `last_seen` is recent."""

    __tablename__ = "printer_status"
    __table_args__ = (
        CheckConstraint("paper IS NULL OR " + _in("paper", PAPER_STATES), name="paper_known"),
    )

    printer_id: Mapped[str] = mapped_column(ForeignKey("printer.id"), primary_key=True)
    online: Mapped[bool] = mapped_column(Boolean, default=False)
    paper: Mapped[str | None] = mapped_column(String(8), nullable=True)  # None: not reported
    last_seen: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    connected_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    problem: Mapped[str | None] = mapped_column(String(300), nullable=True)
