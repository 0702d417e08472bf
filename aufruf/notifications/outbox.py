"""Delivering the outbox: claim due rows with a lease, render them as of now, send outside any
transaction, then record the outcome. At least once: a worker that dies mid-send leaves its
rows to be claimed again when the lease runs out, and the stable Message-ID lets mail clients
fold the rare duplicate. Several workers never claim the same row (PostgreSQL: FOR UPDATE SKIP
LOCKED; SQLite: one writer at a time).

Logs say which message (id, kind) was sent, kept or failed; never its address, body or links.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from aufruf.booking import service as booking
from aufruf.db import Database
from aufruf.notifications import logic
from aufruf.notifications.mail import (
    Mailer,
    PermanentFailure,
    SMTPMailer,
    SMTPServer,
    TemporaryFailure,
)
from aufruf.notifications.model import OutboxMessage
from aufruf.notifications.render import (
    Email,
    MailConfig,
    NotApplicable,
    mime_message,
    render_message,
)
from aufruf.offices import service as offices
from aufruf.settings import Settings

log = logging.getLogger("aufruf.notifications")

LEASE = timedelta(minutes=5)
BATCH = 20
ERROR_MAX = 500


def message_id(outbox_id: int, domain: str) -> str:
    """The Message-ID of an outbox row: the same for every try, so duplicates fold."""
    return f"<outbox-{outbox_id}@{domain}>"


@dataclass(frozen=True)
class Claimed:
    id: int
    kind: str
    lease_until: datetime


@dataclass
class Outcome:
    sent: int = 0
    kept: int = 0
    failed: int = 0
    retried: int = 0


class Delivery:
    """The outbox's part of the worker loop. Without a mailer (no AUFRUF_SMTP_URL) messages
    are kept for staff to read."""

    def __init__(
        self,
        db: Database,
        config: MailConfig,
        mailer: Mailer | None,
        reminder: logic.ReminderRule | None = logic.DEFAULT_REMINDER,
    ) -> None:
        self.db = db
        self.config = config
        self.mailer = mailer
        self.reminder = reminder

    @classmethod
    def from_settings(cls, db: Database, settings: Settings) -> Delivery:
        """The delivery the settings ask for (SMTP server, sender, reminder rule)."""
        mailer = SMTPMailer(SMTPServer.from_url(settings.smtp_url)) if settings.smtp_url else None
        config = MailConfig(
            mail_from=settings.mail_from,
            public_url=settings.public_url or "http://127.0.0.1:8000",
            secret=settings.secret_key,
        )
        return cls(db, config, mailer, logic.parse_reminder_rule(settings.reminder))

    async def run(self, now: datetime) -> Outcome:
        """Queue the reminders that are due, then deliver what is due; one batch at a time
        until nothing is left."""
        if self.reminder is not None:
            queued = await queue_reminders(self.db, self.reminder, now)
            if queued:
                log.info("queued %d reminders", queued)
        total = Outcome()
        while True:
            claimed = await claim(self.db, now, BATCH)
            if not claimed:
                return total
            for row in claimed:
                await self.deliver(row, now, total)

    async def deliver(self, row: Claimed, now: datetime, outcome: Outcome) -> None:
        try:
            async with self.db.read() as session:
                message = await session.get(OutboxMessage, row.id)
                email = await render_message(session, message, self.config, now)
        except NotApplicable as exc:
            await _finish(self.db, row, status="kept", error=str(exc))
            log.info("kept outbox message %d (%s): %s", row.id, row.kind, exc)
            outcome.kept += 1
            return
        if email.to is None:
            await _finish(self.db, row, status="kept", error="no e-mail address")
            log.info("kept outbox message %d (%s): no e-mail address", row.id, row.kind)
            outcome.kept += 1
            return
        if self.mailer is None:
            await _finish(self.db, row, status="kept", error=None)
            log.info("kept outbox message %d (%s): no SMTP server configured", row.id, row.kind)
            outcome.kept += 1
            return
        await self._send(row, email, now, outcome)

    async def _send(self, row: Claimed, email: Email, now: datetime, outcome: Outcome) -> None:
        mime = mime_message(
            email, self.config.mail_from, message_id(row.id, self.config.domain), now
        )
        try:
            await self.mailer.send(mime)
        except PermanentFailure as exc:
            await _finish(self.db, row, status="failed", error=str(exc))
            log.warning("outbox message %d (%s) refused for good: %s", row.id, row.kind, exc)
            outcome.failed += 1
        except TemporaryFailure as exc:
            attempts = await _retry(self.db, row, now, str(exc))
            log.warning(
                "outbox message %d (%s) not sent (try %d), trying again later: %s",
                row.id,
                row.kind,
                attempts,
                exc,
            )
            outcome.retried += 1
        else:
            await _finish(self.db, row, status="sent", error=None, sent_at=now)
            log.info("sent outbox message %d (%s)", row.id, row.kind)
            outcome.sent += 1


async def claim(db: Database, now: datetime, limit: int = BATCH) -> list[Claimed]:
    """Take up to `limit` due messages for this worker until `now + LEASE`, and commit that."""
    lease_until = now + LEASE
    async with db.write() as session:
        stmt = (
            select(OutboxMessage)
            .where(
                OutboxMessage.status.in_(("queued", "sending")),
                OutboxMessage.due_at <= now,
                or_(OutboxMessage.lease_until.is_(None), OutboxMessage.lease_until <= now),
            )
            .order_by(OutboxMessage.due_at, OutboxMessage.id)
            .limit(limit)
        )
        if not db.is_sqlite:
            stmt = stmt.with_for_update(skip_locked=True)
        rows = list(await session.scalars(stmt))
        for message in rows:
            message.status = "sending"
            message.lease_until = lease_until
            message.attempts += 1
        return [Claimed(m.id, m.kind, lease_until) for m in rows]


def _ours(row: Claimed):
    """Only the holder of the lease records an outcome (a row reclaimed after the lease ran
    out belongs to its new holder)."""
    return and_(
        OutboxMessage.id == row.id,
        OutboxMessage.status == "sending",
        OutboxMessage.lease_until == row.lease_until,
    )


async def _finish(
    db: Database,
    row: Claimed,
    *,
    status: str,
    error: str | None,
    sent_at: datetime | None = None,
) -> None:
    async with db.write() as session:
        await session.execute(
            update(OutboxMessage)
            .where(_ours(row))
            .values(
                status=status,
                lease_until=None,
                last_error=error[:ERROR_MAX] if error else None,
                sent_at=sent_at,
            )
        )


async def _retry(db: Database, row: Claimed, now: datetime, error: str) -> int:
    async with db.write() as session:
        message = await session.get(OutboxMessage, row.id)
        if message is None or message.status != "sending" or message.lease_until != row.lease_until:
            return message.attempts if message else 0
        message.status = "queued"
        message.lease_until = None
        message.due_at = now + logic.retry_delay(message.attempts)
        message.last_error = error[:ERROR_MAX]
        return message.attempts


def reminder_key(appointment_id: int, sequence: int) -> str:
    return f"reminder:{appointment_id}:{sequence}"


async def queue_reminders(db: Database, rule: logic.ReminderRule, now: datetime) -> int:
    """Queue a reminder for every confirmed appointment whose reminder moment has come, once
    per appointment and time (a moved appointment is reminded of its new time)."""
    horizon = now + timedelta(days=rule.days_before + 2)
    async with db.write() as session:
        rows = await booking.upcoming_with_email(session, now, horizon)
        if not rows:
            return 0
        zones: dict[str, ZoneInfo] = {}
        due = []
        for row in rows:
            if row.location_id not in zones:
                location = await offices.get_location(session, row.location_id)
                zones[row.location_id] = ZoneInfo(
                    location.timezone if location else "Europe/Berlin"
                )
            zone = zones[row.location_id]
            if logic.reminder_due(rule, row.start_at, row.created_at, zone, now):
                due.append(row)
        if not due:
            return 0
        keys = [reminder_key(r.id, r.sequence) for r in due]
        existing = set(
            await session.scalars(
                select(OutboxMessage.dedupe_key).where(OutboxMessage.dedupe_key.in_(keys))
            )
        )
        values = [
            {
                "kind": "booking_reminder",
                "appointment_id": r.id,
                "language": r.language,
                "details": {},
                "status": "queued",
                "created_at": now,
                "due_at": now,
                "attempts": 0,
                "dedupe_key": reminder_key(r.id, r.sequence),
            }
            for r in due
            if reminder_key(r.id, r.sequence) not in existing
        ]
        if not values:
            return 0
        insert = sqlite_insert if db.is_sqlite else pg_insert
        result = await session.execute(
            insert(OutboxMessage)
            .values(values)
            .on_conflict_do_nothing(index_elements=["dedupe_key"])
        )
        return result.rowcount or 0
