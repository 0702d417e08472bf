"""`/ws/printer`: the printer agent's connection (CONTRACT.md), for the printer its token
belongs to.

The server sends `{"type": "print", "job", "escpos_base64"}`, rendered at send time for this
printer; the agent answers `started` (its printer connection is open, the bytes are about to
go out), `ack` (all out), `failed {reason}` (before `started`: the printer refused, the job
is tried again after a pause; after it: cut off, for staff to reprint) and
`status {online, paper}`. Every `started` is answered: `{"type": "go", "job"}` when it was
recorded, so the agent may send the bytes, or `{"type": "drop", "job", "reason"}` when the job
may not print (`expired`: past its deadline; or no longer queued): the agent then sends
nothing of it.

How new jobs reach a connected agent promptly: the socket subscribes to its location's
channel, on which every new ticket's `issued` event is published after commit (the job was
written in that same transaction), and to the printer's own channel, on which a reprint is
announced after commit. Either wakes it to take its printer's due jobs from the database. A
slow poll (POLL_SECONDS) backs this up: pub/sub keeps no history, so a message lost while a
backend reconnects, or a job whose retry pause has run out, is picked up within seconds.
The database stays the only source of the jobs; the channel only says "look now".

Heartbeat: a ping after HEARTBEAT_SECONDS of silence (the agent answers pong); an agent not
heard of for SILENT_SECONDS is taken for gone and the socket closed. Staff see the printer
online while a socket is open and it was heard of recently; a disconnect marks it offline
and gives back the jobs sent but not started, so the next connection gets them at once.

Close codes: 4401 unknown or revoked token, 4403 not a printer token (or a printer the
server reaches itself), 4404 no such printer.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from typing import Any

from litestar import WebSocket, websocket
from litestar.channels import ChannelsPlugin
from litestar.di import NamedDependency
from litestar.exceptions import WebSocketDisconnect
from litestar.params import SkipValidation

from aufruf.auth.guards import socket_actor
from aufruf.auth.logic import Actor
from aufruf.clock import Clock
from aufruf.db import Database
from aufruf.deps import ClockDep, DatabaseDep, SettingsDep
from aufruf.display.channels import is_resync
from aufruf.display.sockets import close_code, close_reason
from aufruf.errors import DomainError, Forbidden, NotFound
from aufruf.offices import service as offices
from aufruf.offices.model import Printer
from aufruf.printer import service as printing
from aufruf.printer import status as printer_status
from aufruf.printer.model import PrintJob
from aufruf.printer.render import NotPrintable, RenderConfig, job_bytes
from aufruf.queue.events import location_channel

log = logging.getLogger("aufruf.printer")

HEARTBEAT_SECONDS = 20.0
SILENT_SECONDS = 75.0
POLL_SECONDS = 5.0
SEEN_EVERY_SECONDS = 30.0  # how often a quiet but living connection refreshes "last seen"
WAKE_TYPES = frozenset({"issued", "print"})


def printer_channel(printer_id: str) -> str:
    return f"printer:{printer_id}"


def announce_jobs(channels: ChannelsPlugin | None, printer_id: str) -> None:
    """Tell the printer's agent socket, wherever it is connected, to look for jobs now
    (after the commit that queued them)."""
    if channels is not None:
        channels.publish({"type": "print"}, channels=[printer_channel(printer_id)])


async def admitted_printer(actor: Actor, db: Database) -> Printer:
    """The printer this actor may connect as; Forbidden or NotFound otherwise."""
    if actor.printer is None:
        raise Forbidden("Connect with a printer token (aufruf token create --role printer).")
    async with db.read() as session:
        printer = await offices.get_printer(session, actor.printer)
    if printer is None:
        raise NotFound(f"There is no printer {actor.printer!r}.")
    actor.require("printer.connect", location=printer.location_id, printer=printer.id)
    if printer.connection != "agent":
        raise Forbidden(f"The printer {printer.id} is reached by the server itself, not an agent.")
    return printer


class PrinterLink:
    """One agent connection's life: see the module's docstring."""

    def __init__(
        self, socket: WebSocket, printer: Printer, db: Database, clock: Clock, config: RenderConfig
    ) -> None:
        self.socket = socket
        self.printer_id = printer.id
        self.db = db
        self.clock = clock
        self.config = config
        self.sent: set[int] = set()  # handed to this agent, not started yet
        self.news = asyncio.Event()
        self.loop = asyncio.get_running_loop()
        self.last_sent = self.loop.time()
        self.last_heard = self.loop.time()
        self._send_lock = asyncio.Lock()

    async def send(self, message: dict[str, Any]) -> None:
        async with self._send_lock:
            await self.socket.send_text(json.dumps(message, separators=(",", ":")))
            self.last_sent = self.loop.time()

    async def note(self, **state: Any) -> None:
        async with self.db.write() as session:
            await printer_status.note_printer(session, self.printer_id, self.clock.now(), **state)

    # --- jobs out ------------------------------------------------------------------------

    async def pump(self) -> None:
        while True:
            await self.send_due_jobs()
            try:
                await asyncio.wait_for(self.news.wait(), POLL_SECONDS)
            except TimeoutError:
                pass
            self.news.clear()

    async def send_due_jobs(self) -> None:
        now = self.clock.now()
        async with self.db.read() as session:  # most looks find nothing: no write lock then
            if not await printing.has_due_job(session, self.printer_id, now):
                return
        async with self.db.write() as session:
            claimed = await printing.claim_for_printer(session, self.printer_id, now)
        for job in claimed:
            try:
                async with self.db.read() as session:
                    data = await job_bytes(session, job.id, self.config, now)
            except NotPrintable as exc:
                async with self.db.write() as session:
                    await printing.mark_failed(session, job.id, now, str(exc))
                log.info("print job %d (ticket %d) not printed: %s", job.id, job.ticket_id, exc)
                continue
            self.sent.add(job.id)
            await self.send(
                {
                    "type": "print",
                    "job": job.id,
                    "escpos_base64": base64.b64encode(data).decode("ascii"),
                }
            )
            log.info("sent print job %d (ticket %d) to %s", job.id, job.ticket_id, self.printer_id)

    async def follow(self, events) -> None:
        async for raw in events:
            try:
                message = json.loads(raw)
            except ValueError:
                continue
            if is_resync(message) or (
                isinstance(message, dict) and message.get("type") in WAKE_TYPES
            ):
                self.news.set()

    # --- answers in ------------------------------------------------------------------------

    async def receive(self) -> None:
        try:
            while True:
                text = await self.socket.receive_text()
                self.last_heard = self.loop.time()
                try:
                    message = json.loads(text)
                except ValueError:
                    continue
                if isinstance(message, dict):
                    await self.answer(message)
        except WebSocketDisconnect:
            return

    async def answer(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "ping":
            await self.send({"type": "pong"})
            return
        if kind == "status":
            paper = message.get("paper")
            await self.note(
                online=bool(message.get("online", True)),
                paper=paper if isinstance(paper, str) else None,
            )
            return
        job = message.get("job")
        if kind not in ("started", "ack", "failed") or not isinstance(job, int):
            return
        now = self.clock.now()
        reason = str(message.get("reason") or "the agent gave no reason")[:300]
        verdict: dict[str, Any] | None = None
        async with self.db.write() as session:
            if kind == "started":
                verdict = await self._start(session, job, now)
            elif kind == "ack":
                await printing.mark_printed(session, job, self.printer_id, now)
                await printer_status.note_printer(session, self.printer_id, now, online=True)
            else:
                await self._failed(session, job, now, reason)
        self.sent.discard(job)
        if verdict is not None:
            await self.send(verdict)
        log.info(
            "print job %d on %s: %s",
            job,
            self.printer_id,
            kind if kind != "failed" else f"failed: {reason}",
        )

    async def _start(self, session, job_id: int, now) -> dict[str, Any]:
        """Record "started" and tell the agent to go, or to drop a job that may not print."""
        if await printing.mark_started(session, job_id, self.printer_id, now):
            return {"type": "go", "job": job_id}
        job = await session.get(PrintJob, job_id)
        reason = job.status if job is not None and job.printer_id == self.printer_id else "unknown"
        log.warning("print job %d on %s may not start (%s)", job_id, self.printer_id, reason)
        return {"type": "drop", "job": job_id, "reason": reason}

    async def _failed(self, session, job_id: int, now, reason: str) -> None:
        job = await session.get(PrintJob, job_id)
        if job is None or job.printer_id != self.printer_id:
            return
        if job.status == "queued":  # nothing printed: the printer refused
            await printing.retry_later(session, job_id, self.printer_id, now, reason)
            await printer_status.note_printer(
                session, self.printer_id, now, online=False, problem=reason
            )
        elif job.status == "started":  # cut off
            await printing.mark_interrupted(session, job_id, self.printer_id, now, reason)

    # --- staying in touch -------------------------------------------------------------------

    async def keep_alive(self) -> None:
        seen = self.loop.time()
        while True:
            now = self.loop.time()
            if now - self.last_heard >= SILENT_SECONDS:
                log.warning("printer agent of %s went silent; closing", self.printer_id)
                return
            if now - seen >= SEEN_EVERY_SECONDS:
                seen = now
                await self._touch()
            if now - self.last_sent >= HEARTBEAT_SECONDS:
                await self.send({"type": "ping"})
            wake = min(self.last_sent + HEARTBEAT_SECONDS, seen + SEEN_EVERY_SECONDS)
            await asyncio.sleep(max(0.05, wake - self.loop.time()))

    async def _touch(self) -> None:
        """Refresh "last seen" without changing the reported state."""
        async with self.db.write() as session:
            status = await printer_status.printer_status(session, self.printer_id)
            await printer_status.note_printer(
                session,
                self.printer_id,
                self.clock.now(),
                online=status.online if status else True,
                problem=status.problem if status else None,
            )

    async def run(self, subscriber) -> None:
        await self.note(online=True, connected=True)
        log.info("printer agent of %s connected", self.printer_id)
        tasks = [
            asyncio.create_task(self.receive(), name="receive"),
            asyncio.create_task(self.follow(subscriber.iter_events()), name="follow"),
            asyncio.create_task(self.pump(), name="pump"),
            asyncio.create_task(self.keep_alive(), name="keep_alive"),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.goodbye()
        for task in done:
            error = None if task.cancelled() else task.exception()
            if error is not None and not isinstance(error, WebSocketDisconnect | OSError):
                log.error(
                    "printer socket %s: %s failed", self.printer_id, task.get_name(), exc_info=error
                )

    async def goodbye(self) -> None:
        try:
            async with self.db.write() as session:
                await printing.release(session, self.printer_id, sorted(self.sent))
                await printer_status.note_printer(
                    session, self.printer_id, self.clock.now(), online=False, keep_paper=True
                )
        except Exception:
            log.exception("could not record that the agent of %s left", self.printer_id)
        log.info("printer agent of %s disconnected", self.printer_id)


@websocket("/ws/printer", name="printer-socket")
async def printer_socket(
    socket: WebSocket,
    db: DatabaseDep,
    clock: ClockDep,
    settings: SettingsDep,
    channels: NamedDependency[SkipValidation[ChannelsPlugin]],
) -> None:
    """The printer agent's connection (a printer token)."""
    try:
        printer = await admitted_printer(await socket_actor(socket, db, clock, settings), db)
    except DomainError as refused:
        await socket.accept()  # so that the agent sees the close code and reason
        await socket.close(code=close_code(refused), reason=close_reason(refused.detail))
        return
    await socket.accept()
    link = PrinterLink(socket, printer, db, clock, RenderConfig.from_settings(settings))
    channel_names = [location_channel(printer.location_id), printer_channel(printer.id)]
    try:
        async with channels.start_subscription(channel_names) as subscriber:
            await link.run(subscriber)
    except WebSocketDisconnect:
        pass
    if socket.connection_state != "disconnect":
        try:
            await socket.close(code=1000)
        except Exception:  # already gone
            pass
