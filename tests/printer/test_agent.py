"""The printer agent as it runs beside a printer: a real `aufruf printer-agent` process
against the real server, printing into a dummy file. Each ticket comes out once, also across
a restart of the agent and a job the server sends again; a bad token or an unreachable
printer stops it at once with one clear line."""

from __future__ import annotations

import asyncio
import base64
import json
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, update
from websockets.asyncio.server import serve

from aufruf.printer.agent import JobMemory, PrinterAgent
from aufruf.printer.backends import parse_target
from aufruf.printer.model import PrintJob
from tests.display.live import live_server
from tests.printer.conftest import Office, a_printing_office, draw
from tests.printer.paper import read_paper

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 20.0


@pytest.fixture
async def office(db, morning) -> Office:
    return await a_printing_office(db, morning)


@pytest.fixture
def server(office, settings, morning) -> Iterator[str]:
    with live_server(settings, morning) as base:
        yield base


@pytest.fixture
async def http(server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server, timeout=TIMEOUT, trust_env=False) as client:
        yield client


def start_agent(server: str, token: str, paper: Path, state: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aufruf.cli",
            "printer-agent",
            "--server",
            server,
            "--token",
            token,
            "--printer",
            f"dummy:{paper}",
            "--state",
            str(state),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop_agent(agent: subprocess.Popen) -> str:
    agent.send_signal(signal.SIGTERM)
    _, err = agent.communicate(timeout=TIMEOUT)
    return err


def numbers_printed(paper: Path) -> list[str]:
    """The ticket numbers in the dummy file, in the order they were printed."""
    if not paper.exists():
        return []
    tickets = [b"\x1b@" + part for part in paper.read_bytes().split(b"\x1b@") if part]
    return [
        next(w for w in read_paper(t).text.split() if w[:1] == "A" and w[1:].isdigit())
        for t in tickets
        if read_paper(t).qr  # a whole ticket, not a stray INIT inside one
    ]


async def printed_within(paper: Path, count: int, agent: subprocess.Popen) -> list[str]:
    async with asyncio.timeout(TIMEOUT):
        while len(numbers_printed(paper)) < count:
            assert agent.poll() is None, agent.stderr.read()
            await asyncio.sleep(0.05)  # waiting for another process to write its file
    return numbers_printed(paper)


async def all_printed(db) -> None:
    async with asyncio.timeout(TIMEOUT):
        while True:
            if set((await statuses(db)).values()) == {"printed"}:
                return
            await asyncio.sleep(0.05)  # the server records the agent's answers as they come


async def statuses(db) -> dict[int, str]:
    async with db.read() as session:
        return dict((await session.execute(select(PrintJob.id, PrintJob.status))).all())


async def test_every_ticket_is_printed_once_also_across_a_restart_of_the_agent(
    server, http, db, office, tmp_path
):
    paper, state = tmp_path / "paper.bin", tmp_path / "agent.json"
    numbers = [(await draw(http, office.kiosk_a)).json()["number"] for _ in range(2)]

    agent = start_agent(server, office.printer_a, paper, state)
    try:
        await printed_within(paper, 2, agent)
        numbers.append((await draw(http, office.kiosk_a)).json()["number"])
        await printed_within(paper, 3, agent)
    finally:
        log = stop_agent(agent)
    numbers.append((await draw(http, office.kiosk_a)).json()["number"])  # while it is away

    agent = start_agent(server, office.printer_a, paper, state)
    try:
        await printed_within(paper, 4, agent)
        # as if the agent's answers for the first job had been lost: the server sends it again
        first = min(await statuses(db))
        async with db.write() as session:
            await session.execute(
                update(PrintJob)
                .where(PrintJob.id == first)
                .values(status="queued", started_at=None)
            )
        numbers.append((await draw(http, office.kiosk_a)).json()["number"])
        await printed_within(paper, 5, agent)
        await all_printed(db)
    finally:
        log += stop_agent(agent)

    assert numbers_printed(paper) == numbers
    assert "printed job" in log and office.printer_a not in log
    assert f"job {first} was sent again; it is not printed a second time" in log


async def test_a_bad_token_stops_the_agent_with_one_clear_line(server, tmp_path):
    # a token may begin with "-" (base64url): still read as the token, not as an option
    agent = start_agent(server, "-not-a-token", tmp_path / "paper.bin", tmp_path / "s.json")
    _, err = agent.communicate(timeout=TIMEOUT)

    assert agent.returncode != 0
    assert err.strip().splitlines()[-1] == (
        "aufruf printer-agent: the server refused the token (4401): "
        "The token is unknown or has been revoked."
    )


def test_an_unreachable_printer_at_start_stops_the_agent(tmp_path):
    missing = tmp_path / "no-such-folder" / "paper.bin"
    agent = start_agent("http://127.0.0.1:9", "whatever", missing, tmp_path / "s.json")
    _, err = agent.communicate(timeout=TIMEOUT)

    assert agent.returncode == 1
    assert (
        err.strip()
        .splitlines()[-1]
        .startswith(f"aufruf printer-agent: cannot reach the printer dummy:{missing}")
    )


async def test_the_agent_prints_nothing_of_a_job_the_server_drops_after_started(tmp_path):
    """The server answers "started" with "drop" for a job past its deadline: the agent sends
    no byte of it and goes on with the next job, which the server lets go."""
    heard: list[dict] = []
    stop = asyncio.Event()

    async def answer_started(ws, job: int, verdict: dict) -> None:
        while True:
            message = json.loads(await ws.recv())
            heard.append(message)
            if message == {"type": "started", "job": job}:
                await ws.send(json.dumps(verdict))
                return

    async def scripted_server(ws) -> None:
        for job, data in ((1, b"LATE TICKET"), (2, b"FRESH TICKET")):
            escpos = base64.b64encode(data).decode()
            await ws.send(json.dumps({"type": "print", "job": job, "escpos_base64": escpos}))
        await answer_started(ws, 1, {"type": "drop", "job": 1, "reason": "expired"})
        await answer_started(ws, 2, {"type": "go", "job": 2})
        while {"type": "ack", "job": 2} not in heard:
            heard.append(json.loads(await ws.recv()))
        stop.set()

    paper = tmp_path / "paper.bin"
    memory = JobMemory(tmp_path / "state.json")
    async with serve(scripted_server, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        target = parse_target(f"dummy:{paper}")
        agent = PrinterAgent(f"http://127.0.0.1:{port}", "t", target, memory)
        await asyncio.wait_for(agent.run(stop), TIMEOUT)

    assert paper.read_bytes() == b"FRESH TICKET"
    assert not memory.knows(1) and memory.knows(2)
    assert [m for m in heard if m.get("job") == 1] == [{"type": "started", "job": 1}]
