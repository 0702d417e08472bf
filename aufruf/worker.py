"""The worker loop: what is due without anyone asking. Runs inside `aufruf serve` (unless
--no-worker) or alone as `aufruf worker`. Every job is one short transaction and safe to run
on several instances at once."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from aufruf.booking import service as booking
from aufruf.clock import Clock
from aufruf.db import Database
from aufruf.ratelimit import RateLimiter

log = logging.getLogger("aufruf.worker")

TICK_SECONDS = 15.0
PURGE_EVERY = timedelta(hours=1)


class Worker:
    def __init__(self, db: Database, clock: Clock, limiter: RateLimiter | None = None) -> None:
        self.db = db
        self.clock = clock
        self.limiter = limiter
        self.last_purge: datetime | None = None

    async def tick(self) -> None:
        """Do once what is due now."""
        now = self.clock.now()
        async with self.db.write() as session:
            released = await booking.release_due(session, now)
        if released:
            log.info("freed the time of %d appointments (hold-back over or unconfirmed)", released)
        if self.last_purge is None or now - self.last_purge >= PURGE_EVERY:
            deleted = await purge(self.db, now)
            if deleted:
                log.info("deleted the personal data of %d past appointments", deleted)
            if self.limiter is not None:
                await self.limiter.forget_before(now)
            self.last_purge = now

    async def run(self, stop: asyncio.Event) -> None:
        log.info("worker started")
        while not stop.is_set():
            try:
                await self.tick()
            except Exception:
                log.exception("worker tick failed; trying again in %.0f s", TICK_SECONDS)
            try:
                await asyncio.wait_for(stop.wait(), TICK_SECONDS)
            except TimeoutError:
                pass
        log.info("worker stopped")


async def purge(db: Database, now: datetime) -> int:
    async with db.write() as session:
        return await booking.purge(session, now)
