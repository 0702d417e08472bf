"""`aufruf printer-agent --server URL --token T --printer SPEC`: runs on the PC beside a
ticket printer, connects out to the server's `/ws/printer` and prints the jobs of the printer
its token belongs to (CONTRACT.md).

Never twice: before the first byte of a job goes out, its id is written to a small state file
(flushed to disk); a job the file knows is never printed again, also after the agent
restarts. The server learns "started" before the bytes and "ack" after; a printer that refuses
the connection is reported as "failed" before "started", so the server tries again later.
After "started" the agent waits for the server's word: "go" and it prints; "drop" (the job
expired: the visitor was told no paper would come) and it sends nothing of the job. Without
an answer within ANSWER_SECONDS it sends nothing either and reports the job failed.

Reconnects with a growing pause (1 s up to a minute). Exits with one clear line and a non-zero
status when the server refuses the token, or when the printer cannot be reached at start.
The token never appears in the log.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import json
import logging
import os
import signal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from aufruf.printer.backends import (
    PrintCutOff,
    PrinterUnreachable,
    Target,
    open_printer,
    parse_target,
)

log = logging.getLogger("aufruf.printer.agent")

BACKOFF_SECONDS = (1, 2, 4, 8, 15, 30, 60)
KEEP_IDS = 5000  # job ids remembered (far more than a day's tickets of one printer)
REPORT_AGAIN = 20  # outcomes repeated after a reconnect, in case an answer was lost
ANSWER_SECONDS = 15.0  # how long to wait for the server's "go" after "started"
REFUSED_CODES = {
    4401: "the token is unknown or revoked",
    4403: "the token may not print here",
    4404: "the token's printer is not in the directory",
}


class AgentStopped(Exception):
    """The agent cannot go on; the message is the one line it exits with."""


def socket_url(server: str) -> str:
    """The printer socket's ws(s) address from the server's http(s) base address."""
    parts = urlsplit(server.strip())
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme)
    if scheme is None or not parts.netloc:
        raise AgentStopped(f"--server must be the server's http(s) address, not {server!r}")
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + "/ws/printer", "", ""))


def default_state_file(server: str, printer: str) -> Path:
    base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    key = hashlib.sha256(f"{server}|{printer}".encode()).hexdigest()[:12]
    return base / "aufruf" / f"printer-agent-{key}.json"


class JobMemory:
    """The job ids this agent started and printed, kept in a small JSON file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.started: list[int] = []
        self.printed: set[int] = set()
        if path.exists():
            try:
                saved = json.loads(path.read_text())
                self.started = [int(i) for i in saved.get("started", [])]
                self.printed = {int(i) for i in saved.get("printed", [])}
            except (ValueError, TypeError, AttributeError) as exc:
                raise AgentStopped(
                    f"the state file {path} is damaged ({exc}); move it away"
                ) from exc

    def knows(self, job: int) -> bool:
        return job in self.started or job in self.printed

    def recent_outcomes(self) -> list[tuple[int, bool]]:
        """The last jobs started, each with whether it was printed completely."""
        return [(job, job in self.printed) for job in self.started[-REPORT_AGAIN:]]

    def note_started(self, job: int) -> None:
        self.started = [*self.started, job][-KEEP_IDS:]
        self._save()

    def note_printed(self, job: int) -> None:
        self.printed.add(job)
        self.printed &= set(self.started)
        self._save()

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        spare = self.path.with_suffix(".tmp")
        with spare.open("w") as out:
            json.dump({"started": self.started, "printed": sorted(self.printed)}, out)
            out.flush()
            os.fsync(out.fileno())
        spare.replace(self.path)


class PrinterAgent:
    def __init__(self, server: str, token: str, target: Target, memory: JobMemory) -> None:
        self.url = socket_url(server)
        self.token = token
        self.target = target
        self.memory = memory
        self.online: bool | None = None
        self.sending = asyncio.Lock()
        self.verdicts: dict[int, asyncio.Future[dict[str, Any]]] = {}

    async def check_printer(self) -> None:
        """Open and close the printer once; AgentStopped when it cannot be reached."""
        try:
            connection = await open_printer(self.target)
        except PrinterUnreachable as exc:
            raise AgentStopped(str(exc)) from exc
        await connection.close()
        self.online = True
        log.info("the printer %s is reachable", self.target)

    async def run(self, stop: asyncio.Event) -> None:
        failures = 0
        while not stop.is_set():
            try:
                async with connect(
                    self.url,
                    additional_headers={"Authorization": f"Bearer {self.token}"},
                    open_timeout=15,
                    ping_interval=20,
                    ping_timeout=20,
                    proxy=None,
                ) as ws:
                    failures = 0
                    log.info("connected to %s", self.url)
                    await self.serve(ws, stop)
            except InvalidStatus as exc:
                code = exc.response.status_code
                if code in (401, 403):
                    raise AgentStopped(f"the server refused the token ({code})") from exc
                log.warning("the server answered %d; trying again", code)
            except ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd else None
                if code in REFUSED_CODES:
                    why = exc.rcvd.reason or REFUSED_CODES[code]
                    raise AgentStopped(f"the server refused the token ({code}): {why}") from exc
                log.warning("the connection to the server was lost (%s)", code or "no close frame")
            except (OSError, TimeoutError, InvalidHandshake) as exc:
                log.warning(
                    "cannot reach the server at %s (%s)", self.url, exc or type(exc).__name__
                )
            if stop.is_set():
                break
            pause = BACKOFF_SECONDS[min(failures, len(BACKOFF_SECONDS) - 1)]
            failures += 1
            log.info("connecting again in %d s", pause)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), pause)

    async def serve(self, ws: ClientConnection, stop: asyncio.Event) -> None:
        """Read the server's messages (pings are answered at once, also while printing) and
        print the jobs one after the other. When the connection ends, the job on the printer
        is finished; the ones not started yet come again with the next connection."""
        await self.send(ws, {"type": "status", "online": bool(self.online), "paper": None})
        for job, printed in self.memory.recent_outcomes():
            await self.send_outcome(ws, job, printed)
        jobs: asyncio.Queue[tuple[int, str]] = asyncio.Queue()
        closing = asyncio.Event()
        printer = asyncio.create_task(self.print_queued(ws, jobs, closing))
        reader = asyncio.create_task(self.read(ws, jobs))
        stopping = asyncio.create_task(stop.wait())
        try:
            done, _ = await asyncio.wait({reader, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closing.set()
            jobs.put_nowait((0, ""))  # wakes the printer task if it waits
            reader.cancel()
            stopping.cancel()
            await asyncio.gather(printer, reader, stopping, return_exceptions=True)
        if stopping in done:
            await ws.close()
            return
        reader.result()  # how the connection ended, for run()

    async def read(self, ws: ClientConnection, jobs: asyncio.Queue[tuple[int, str]]) -> None:
        while True:
            try:
                message = json.loads(await ws.recv())
            except ValueError:
                continue
            if not isinstance(message, dict):
                continue
            if message.get("type") == "ping":
                await self.send(ws, {"type": "pong"})
            elif message.get("type") == "print" and isinstance(message.get("job"), int):
                jobs.put_nowait((message["job"], message.get("escpos_base64") or ""))
            elif message.get("type") in ("go", "drop"):
                waiting = self.verdicts.get(message.get("job"))
                if waiting is not None and not waiting.done():
                    waiting.set_result(message)

    async def print_queued(
        self, ws: ClientConnection, jobs: asyncio.Queue[tuple[int, str]], closing: asyncio.Event
    ) -> None:
        while True:
            job, encoded = await jobs.get()
            if closing.is_set():
                return
            try:
                await self.print_job(ws, job, encoded)
            except ConnectionClosed:
                return  # the outcome is in the state file and is told on the next connection

    async def send(self, ws: ClientConnection, message: dict[str, Any]) -> None:
        async with self.sending:
            await ws.send(json.dumps(message, separators=(",", ":")))

    async def send_outcome(self, ws: ClientConnection, job: int, printed: bool) -> None:
        if printed:
            await self.send(ws, {"type": "ack", "job": job})
        else:  # started before a restart, never finished: maybe half on paper
            await self.send(
                ws, {"type": "failed", "job": job, "reason": "the agent stopped while printing"}
            )

    async def print_job(self, ws: ClientConnection, job: int, encoded: str) -> None:
        if self.memory.knows(job):
            log.warning("job %d was sent again; it is not printed a second time", job)
            await self.send(ws, {"type": "started", "job": job})
            await self.send_outcome(ws, job, job in self.memory.printed)
            return
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            await self.send(ws, {"type": "failed", "job": job, "reason": "unreadable job"})
            return
        try:
            connection = await open_printer(self.target)
        except PrinterUnreachable as exc:
            log.warning("job %d waits: %s", job, exc)
            await self.send(ws, {"type": "failed", "job": job, "reason": str(exc)})
            await self.report_online(ws, False)
            return
        try:
            if not await self.may_start(ws, job):
                return
            self.memory.note_started(job)  # on disk before the first byte
            await connection.write(data)
            paper = await connection.paper()
        except PrintCutOff as exc:
            log.error("job %d was cut off: %s; staff can reprint it", job, exc)
            await self.send(ws, {"type": "failed", "job": job, "reason": str(exc)})
            await self.report_online(ws, False)
            return
        finally:
            await connection.close()
        self.memory.note_printed(job)
        await self.send(ws, {"type": "ack", "job": job})
        log.info("printed job %d (%d bytes) on %s", job, len(data), self.target)
        await self.report_online(ws, True, paper)

    async def may_start(self, ws: ClientConnection, job: int) -> bool:
        """Say "started" and wait for the server's "go"; False when it says "drop" (the job
        expired or is no longer to print) or does not answer in time: nothing is sent then."""
        verdict = asyncio.get_running_loop().create_future()
        self.verdicts[job] = verdict
        try:
            await self.send(ws, {"type": "started", "job": job})
            answer = await asyncio.wait_for(verdict, ANSWER_SECONDS)
        except TimeoutError:
            log.warning("job %d: the server did not confirm the start; not printed", job)
            await self.send(
                ws, {"type": "failed", "job": job, "reason": "the server did not confirm the start"}
            )
            return False
        finally:
            self.verdicts.pop(job, None)
        if answer.get("type") != "go":
            log.warning(
                "job %d dropped by the server (%s); not printed", job, answer.get("reason") or "?"
            )
            return False
        return True

    async def report_online(self, ws: ClientConnection, online: bool, paper: str | None = None):
        if online != self.online or paper is not None:
            self.online = online
            await self.send(ws, {"type": "status", "online": online, "paper": paper})


async def run_agent(server: str, token: str, printer: str, state: Path | None) -> None:
    """The agent until SIGINT/SIGTERM; AgentStopped with the reason it cannot go on."""
    try:
        target = parse_target(printer)
    except ValueError as exc:
        raise AgentStopped(str(exc)) from exc
    if not token.strip():
        raise AgentStopped("--token is empty")
    memory = JobMemory(state or default_state_file(server, printer))
    agent = PrinterAgent(server, token.strip(), target, memory)
    await agent.check_printer()
    log.info("remembering printed jobs in %s", memory.path)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await agent.run(stop)
    log.info("printer agent stopped")
