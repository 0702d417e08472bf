"""The worker loop: what is due without anyone asking. Runs inside `aufruf serve` (unless
--no-worker) or alone as `aufruf worker`. Every job is one short transaction and safe to run
on several instances at once."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from aufruf.auth import service as auth
from aufruf.booking import service as booking
from aufruf.clock import Clock
from aufruf.db import Database
from aufruf.notifications.outbox import Delivery
from aufruf.printer.delivery import PrintDelivery
from aufruf.queue import service as queue
from aufruf.queue.events import EventHub
from aufruf.ratelimit import RateLimiter

log = logging.getLogger("aufruf.worker")

TICK_SECONDS = 15.0
PURGE_EVERY = timedelta(hours=1)
PRINT_POLL_SECONDS = 1.0  # direct printers: a ticket comes out within about a second


class Worker:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        limiter: RateLimiter | None = None,
        events: EventHub | None = None,
        delivery: Delivery | None = None,
        printing: PrintDelivery | None = None,
    ) -> None:
        self.db = db
        self.delivery = delivery  # the e-mail outbox and reminders
        self.printing = printing  # print jobs of direct printers
        self.clock = clock
        self.limiter = limiter
        self.events = events or EventHub(None)
        self.last_purge: datetime | None = None
        self.next_due: datetime | None = None

    async def tick(self) -> None:
        """Do once what is due now."""
        now = self.clock.now()
        async with self.db.write() as session:
            released = await booking.release_due(session, now)
        if released:
            log.info("freed the time of %d appointments (hold-back over or unconfirmed)", released)
        await self.queue_timers(now)
        if self.delivery is not None:
            await self.delivery.run(now)
        if self.printing is not None:
            await self.printing.sweep(now)
        if self.last_purge is None or now - self.last_purge >= PURGE_EVERY:
            deleted = await purge(self.db, now)
            if deleted:
                log.info("deleted the personal data of %d past appointments", deleted)
            if self.limiter is not None:
                await self.limiter.forget_before(now)
            await auth.forget_expired(self.db, now)  # ended sessions, old login failures
            self.last_purge = now

    async def queue_timers(self, now: datetime) -> None:
        """Events for appointments that became due, and the day's close-out."""
        change = queue.Change()
        async with self.db.write() as session:
            self.next_due = await queue.raise_due_events(session, change, now)
            for location_id in await queue.due_closings(session, now):
                closed = await queue.close_day(session, change, location_id, now, "end of day")
                log.info(
                    "closed %d tickets still waiting at %s at the end of the day",
                    closed,
                    location_id,
                )
        await self.events.publish(change.events)

    def seconds_to_next(self) -> float:
        if self.next_due is None:
            return TICK_SECONDS
        return max(0.5, min(TICK_SECONDS, (self.next_due - self.clock.now()).total_seconds()))

    async def print_jobs(self, stop: asyncio.Event) -> None:
        """Deliver direct printers' jobs as they come: a cheap read of the earliest due time
        every PRINT_POLL_SECONDS (this loop runs without channels in `aufruf worker` too)."""
        while self.printing is not None and not stop.is_set():
            try:
                due = await self.printing.next_due()
                now = self.clock.now()
                if due is not None and due <= now:
                    await self.printing.run(now)
            except Exception:
                log.exception("printing failed; trying again shortly")
            try:
                await asyncio.wait_for(stop.wait(), PRINT_POLL_SECONDS)
            except TimeoutError:
                pass

    async def run(self, stop: asyncio.Event) -> None:
        log.info("worker started")
        printer_loop = asyncio.create_task(self.print_jobs(stop))
        while not stop.is_set():
            try:
                await self.tick()
            except Exception:
                log.exception("worker tick failed; trying again in %.0f s", TICK_SECONDS)
            try:
                await asyncio.wait_for(stop.wait(), self.seconds_to_next())
            except TimeoutError:
                pass
        await printer_loop
        log.info("worker stopped")


async def purge(db: Database, now: datetime) -> int:
    async with db.write() as session:
        return await booking.purge(session, now)
