"""The worker's part for printers the server reaches itself (`connection = "direct"`).

Per job: render it (a job that cannot be printed any more fails), open the connection (a
printer that refuses leaves the job queued, tried again after a growing pause), record
"started" and commit, then send the bytes; all bytes out: printed; cut off: interrupted, for
staff to reprint. Printers are served side by side, each one's jobs in order; once a printer
has refused, its other jobs wait for the next round instead of knocking again.

Logs name the job, ticket and printer; never the ticket's link.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from aufruf.db import Database
from aufruf.offices import service as offices
from aufruf.printer import service as printing
from aufruf.printer import status as printer_status
from aufruf.printer.backends import PrintCutOff, PrinterUnreachable, open_printer
from aufruf.printer.render import NotPrintable, RenderConfig, job_bytes
from aufruf.printer.service import Claimed
from aufruf.settings import Settings

log = logging.getLogger("aufruf.printer")

BATCH = 20


@dataclass
class Outcome:
    printed: int = 0
    interrupted: int = 0
    retried: int = 0
    failed: int = 0


class PrintDelivery:
    def __init__(self, db: Database, config: RenderConfig) -> None:
        self.db = db
        self.config = config

    @classmethod
    def from_settings(cls, db: Database, settings: Settings) -> PrintDelivery:
        return cls(db, RenderConfig.from_settings(settings))

    async def next_due(self) -> datetime | None:
        """When the earliest job of a direct printer is due, None if there is none."""
        async with self.db.read() as session:
            return await printing.next_direct_due(session)

    async def sweep(self, now: datetime) -> int:
        """Started jobs never acknowledged within the timeout become interrupted; queued jobs
        of any printer past their deadline expire."""
        async with self.db.write() as session:
            found = await printing.interrupt_unacknowledged(session, now)
            expired = await printing.expire_overdue(session, now)
        if found:
            log.warning("%d print jobs were never confirmed; staff can reprint them", found)
        if expired:
            log.warning("%d print jobs expired unprinted; staff can print them again", expired)
        return found + expired

    async def run(self, now: datetime) -> Outcome:
        """Deliver every due job of the direct printers, one batch at a time."""
        total = Outcome()
        while True:
            async with self.db.write() as session:
                claimed = await printing.claim_direct(session, now, BATCH)
            if not claimed:
                return total
            by_printer: dict[str, list[Claimed]] = defaultdict(list)
            for job in claimed:
                by_printer[job.printer_id].append(job)
            await asyncio.gather(*(self._serve(jobs, now, total) for jobs in by_printer.values()))

    async def _serve(self, jobs: list[Claimed], now: datetime, outcome: Outcome) -> None:
        refused: str | None = None
        for job in jobs:
            if refused is not None:
                await self._retry(job, now, refused, outcome)
                continue
            refused = await self.deliver(job, now, outcome)

    async def _retry(self, job: Claimed, now: datetime, reason: str, outcome: Outcome) -> None:
        async with self.db.write() as session:
            await printing.retry_later(
                session, job.id, job.printer_id, now, reason, job.lease_until
            )
        outcome.retried += 1

    async def deliver(self, job: Claimed, now: datetime, outcome: Outcome) -> str | None:
        """Print one job; returns the reason when the printer refused the connection."""
        try:
            async with self.db.read() as session:
                data = await job_bytes(session, job.id, self.config, now)
                printer = await offices.get_printer(session, job.printer_id)
        except NotPrintable as exc:
            async with self.db.write() as session:
                await printing.mark_failed(session, job.id, now, str(exc))
            log.info("print job %d (ticket %d) not printed: %s", job.id, job.ticket_id, exc)
            outcome.failed += 1
            return None
        try:
            connection = await open_printer(printer.target or "")
        except (PrinterUnreachable, ValueError) as exc:
            async with self.db.write() as session:
                await printing.retry_later(
                    session, job.id, job.printer_id, now, str(exc), job.lease_until
                )
                await printer_status.note_printer(
                    session, job.printer_id, now, online=False, problem=str(exc)
                )
            log.warning("print job %d waits: %s", job.id, exc)
            outcome.retried += 1
            return str(exc)
        try:
            async with self.db.write() as session:
                started = await printing.mark_started(
                    session, job.id, job.printer_id, now, job.lease_until
                )
            if not started:
                log.warning("print job %d expired or was taken over; not sent", job.id)
                return None
            await self._send(job, connection, data, now, outcome)
        finally:
            await connection.close()
        return None

    async def _send(self, job: Claimed, connection, data: bytes, now, outcome: Outcome) -> None:
        try:
            await connection.write(data)
        except PrintCutOff as exc:
            async with self.db.write() as session:
                await printing.mark_interrupted(session, job.id, job.printer_id, now, str(exc))
                await printer_status.note_printer(
                    session, job.printer_id, now, online=False, problem=str(exc)
                )
            log.warning(
                "print job %d (ticket %d) cut off on %s: %s; staff can reprint it",
                job.id,
                job.ticket_id,
                job.printer_id,
                exc,
            )
            outcome.interrupted += 1
            return
        async with self.db.write() as session:
            await printing.mark_printed(session, job.id, job.printer_id, now)
            await printer_status.note_printer(session, job.printer_id, now, online=True)
        log.info("printed job %d (ticket %d) on %s", job.id, job.ticket_id, job.printer_id)
        outcome.printed += 1
