"""The fan-out benchmark: how fast a call reaches 1,000 phones and 20 wall displays, next to a
bare `websockets` server broadcasting to as many clients, and what a connection costs.

Run it from the repository root:

    .venv/bin/python -m bench.fanout [--postgres URL] [--phones 1000] [--displays 20]
                                     [--desks 0] [--calls 50] [--runs 1] [--json PATH]

(as a module: run as a file, bench/queue.py would shadow the standard library's queue)

What it does, in about a minute:

1. Creates a database of its own (aufruf_bench_fanout_<random>) on the PostgreSQL server given
   by --postgres, AUFRUF_TEST_POSTGRES_URL or postgresql+asyncpg://postgres@127.0.0.1:5432/test,
   migrates it, adds a location open all day with one counter and a clerk token, and draws
   --calls + --phones tickets (aufruf's own draw_ticket); ANALYZE gives the planner the
   statistics autovacuum keeps in a database in use.
2. Serves the app `aufruf serve` serves (aufruf.app:app_from_env, without the worker) with
   uvicorn as the other benchmarks do (bench/harness.py: one worker, no access log) and with
   `aufruf serve`'s options (no per-message compression); live events go through PostgreSQL
   LISTEN/NOTIFY, as in production without Redis. Opens the counter.
3. From this process, a second one: connects --phones phone views (/ws/tickets/{token}, one
   per ticket behind the first --calls) and --displays wall displays
   (/ws/locations/{L}/display), reading the server's RSS before and after (memory per
   connection = the difference / connections). Then --desks desks (/ws/counters/{C} with
   the clerk's token, each getting the counter's whole queue with every state): the load of
   an office whose clerks have the desk open, counted apart from the figures of the targets.
4. The clerk calls next --calls times, one after the other. For each: the time from sending
   POST /api/v1/counters/{C}/call-next until every client has the event: a display its
   "called" message, a phone a ticket message with one person fewer ahead.
5. The baseline, in the same run: bench/bare_ws.py, a bare `websockets` server (also without
   per-message compression), with the same number of clients; a control client sends --calls
   messages one after the other (each about as long as a phone view's message), the server
   broadcasts each to all; the time from sending until every client has it. Memory per
   connection the same way.
6. Prints p50, p99 and max of both, the memory per connection, and the verdicts of the targets:
   aufruf's p99 at most 2x the baseline's p99, and under 250 ms. For information it also
   prints the first call apart from the others (the process compiles and prepares the
   statements of a call the first time it makes one), and when the last wall display had
   the call; the verdicts count every call. And how much of a core the rest of the machine
   used during each side's calls (bench/harness.py's Meter: other processes, and the time a
   virtual machine's host took; more than a quarter of a core makes the figures noisy).
7. With --runs N, all of it N times (a fresh database and servers each time), and then in
   how many runs the targets were met, with the spread of the p99 ratio: one run's p99 of 50
   calls hangs on its few slowest calls, on either side. The exit status is 0 only if every
   run met both targets.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
from sqlalchemy import text
from websockets.asyncio.client import ClientConnection, connect

from aufruf import migrate
from aufruf.auth.service import create_token
from aufruf.db import Database
from aufruf.queue import service as queue_service
from bench.harness import (
    BENCH,
    DEFAULT_POSTGRES,
    HOST,
    NOISY,
    ROOT,
    SECRET,
    Connection,
    Meter,
    create_database,
    drop_database,
    free_port,
    percentile,
    start_server,
    wait_until_ready,
    with_database,
)

LOCATION = "fanout"
COUNTER = f"{LOCATION}-1"
CONNECT_BATCH = 50
WAIT_SECONDS = 20.0
P99_FACTOR, P99_LIMIT_MS = 2.0, 250.0


async def prepare(url: str, tickets: int) -> dict[str, Any]:
    """Migrate; the location, the clerk's token, and `tickets` drawn tickets' tokens."""
    from tests.builders import a_location

    db = Database(url)
    try:
        await migrate.upgrade(db.engine)
        await a_location(
            db,
            LOCATION,
            weekdays=tuple(range(7)),
            hours="00:00-23:59",
            holiday_state=None,
            counters=1,
        )
        now = datetime.now(UTC)
        async with db.write() as session:
            clerk = await create_token(
                session, now, role="clerk", location=LOCATION, counter=COUNTER
            )
        tokens: list[str] = []
        while len(tokens) < tickets:
            change = queue_service.Change()
            async with db.write() as session:
                for _ in range(min(200, tickets - len(tokens))):
                    ticket = await queue_service.draw_ticket(
                        session, change, now, LOCATION, ["pass"], source="staff", actor="bench"
                    )
                    tokens.append(queue_service.ticket_token(SECRET, ticket))
        # the planner's statistics, as autovacuum keeps them in a database in use (it would
        # not get to this one before the run ends)
        async with db.engine.begin() as connection:
            await connection.execute(text("ANALYZE"))
    finally:
        await db.dispose()
    return {"clerk": clerk.token, "tickets": tokens}


def has_content(path: Path) -> bool:
    return path.exists() and path.stat().st_size > 0


async def wait_for_file(path: Path) -> None:
    """Until the profiler has written its report (it does when signalled)."""
    async with asyncio.timeout(60):
        while True:
            if await asyncio.to_thread(has_content, path):
                return
            await asyncio.sleep(0.2)


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


@dataclass
class Round:
    """Which clients have the k-th event, and when the last of them got it."""

    expected: int
    have: int = 0
    last: float = 0.0
    last_wall: float = 0.0  # when the last wall display got it
    complete: asyncio.Event = field(default_factory=asyncio.Event)

    def arrived(self, at: float, wall: bool) -> None:
        self.have += 1
        self.last = max(self.last, at)
        if wall:
            self.last_wall = max(self.last_wall, at)
        if self.have == self.expected:
            self.complete.set()


class Audience:
    """Every client's progress: the k-th event reached client c when its count reaches k."""

    def __init__(self, clients: int, rounds: int) -> None:
        self.rounds = [Round(clients) for _ in range(rounds + 1)]

    def reached(self, k: int, at: float, wall: bool = False) -> None:
        if 0 < k < len(self.rounds):
            self.rounds[k].arrived(at, wall)


async def open_all(urls: list[str]) -> list[ClientConnection]:
    sockets: list[ClientConnection] = []
    for start in range(0, len(urls), CONNECT_BATCH):
        batch = urls[start : start + CONNECT_BATCH]
        sockets += await asyncio.gather(
            *(connect(u, open_timeout=60, ping_interval=None, max_size=2**20) for u in batch)
        )
    return sockets


async def first_message(ws: ClientConnection) -> dict:
    async with asyncio.timeout(WAIT_SECONDS):
        while True:
            message = json.loads(await ws.recv())
            if message["type"] not in ("ping", "pong"):
                return message


async def follow_display(ws: ClientConnection, audience: Audience) -> None:
    calls = 0
    async for raw in ws:
        message = json.loads(raw)
        if message["type"] == "called":
            calls += 1
            audience.reached(calls, time.perf_counter(), wall=True)
        elif message["type"] == "snapshot":
            raise RuntimeError("a display resynced during the benchmark")


class DeskMessage(msgspec.Struct):
    """What a desk's follower reads of a message: the counter's whole queue is skipped (a
    desk is a machine of its own; this process should not spend the phones' time on it)."""

    type: str
    counter: dict[str, Any] | None = None


async def follow_desk(ws: ClientConnection, first: dict, audience: Audience) -> None:
    calls, current = 0, (first["counter"]["current"] or {}).get("id")
    async for raw in ws:
        message = msgspec.json.decode(raw, type=DeskMessage)
        if message.type != "counter" or message.counter is None:
            continue
        now = (message.counter["current"] or {}).get("id")
        if now != current:
            current, calls = now, calls + 1
            audience.reached(calls, time.perf_counter())


async def follow_phone(ws: ClientConnection, ahead: int, audience: Audience) -> None:
    reached = 0
    async for raw in ws:
        message = json.loads(raw)
        if message["type"] != "ticket" or message["people_ahead"] is None:
            continue
        while reached < ahead - message["people_ahead"]:
            reached += 1
            audience.reached(reached, time.perf_counter())


async def measure_aufruf(args: argparse.Namespace, url: str, log_dir: Path) -> dict[str, Any]:
    office = await prepare(url, args.calls + args.phones)
    env = dict(os.environ)
    env.update(
        AUFRUF_DATABASE_URL=url,
        AUFRUF_SECRET_KEY=SECRET,
        PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    )
    env.pop("AUFRUF_REDIS_URL", None)
    env["AUFRUF_RUN_WORKER"] = "0"  # `aufruf serve --no-worker`: the worker's timers aside
    factory, app_dir = "aufruf.app:app_from_env", ROOT  # what `aufruf serve` runs
    if args.profile:
        env["BENCH_PROFILE"] = str(args.profile)
        factory, app_dir = "profiled_app:create", BENCH
    # with `aufruf serve`'s options: no per-message compression
    server = start_server(
        "aufruf",
        factory,
        env,
        log_dir,
        app_dir=app_dir,
        options=("--ws-per-message-deflate", "false"),
    )
    sockets: list[ClientConnection] = []
    desks: list[ClientConnection] = []
    tasks: list[asyncio.Task] = []
    clerk = Connection(server.port)
    try:
        await wait_until_ready(server, "/health")
        status, body = await clerk.request(
            "POST", f"/api/v1/counters/{COUNTER}/open", token=office["clerk"]
        )
        assert status == 200, body
        base = f"ws://{HOST}:{server.port}"
        phones = [f"{base}/ws/tickets/{t}" for t in office["tickets"][args.calls :]]
        displays = [f"{base}/ws/locations/{LOCATION}/display"] * args.displays
        rss_before = rss_bytes(server.process.pid)
        sockets = await open_all(phones + displays)
        firsts = await asyncio.gather(*(first_message(ws) for ws in sockets))
        rss_after = rss_bytes(server.process.pid)
        desk = f"{base}/ws/counters/{COUNTER}?token={office['clerk']}"
        desks = await open_all([desk] * args.desks)
        desk_audience = Audience(len(desks), args.calls)
        for ws, first in zip(desks, await asyncio.gather(*map(first_message, desks)), strict=True):
            tasks.append(asyncio.create_task(follow_desk(ws, first, desk_audience)))

        audience = Audience(len(sockets), args.calls)
        for ws, first in zip(sockets, firsts, strict=True):
            if first["type"] == "ticket":
                tasks.append(asyncio.create_task(follow_phone(ws, first["people_ahead"], audience)))
            else:
                tasks.append(asyncio.create_task(follow_display(ws, audience)))
        latencies, answers, walls, desk_latencies = [], [], [], []
        if args.profile:
            server.process.send_signal(signal.SIGUSR1)
        meter = Meter(server.process.pid, url.rpartition("/")[2])
        machine_before, started = meter.sample(), time.perf_counter()
        for k in range(1, args.calls + 1):
            await clerk.close()  # a fresh connection (an idle one may have been closed) …
            await clerk.request("GET", "/health")  # … opened before the clock starts
            sent = time.perf_counter()
            status, body = await clerk.request(
                "POST", f"/api/v1/counters/{COUNTER}/call-next", token=office["clerk"]
            )
            answers.append(time.perf_counter() - sent)
            assert status == 200, body
            await asyncio.wait_for(audience.rounds[k].complete.wait(), WAIT_SECONDS)
            latencies.append(audience.rounds[k].last - sent)
            walls.append(audience.rounds[k].last_wall - sent)
            if desks:
                await asyncio.wait_for(desk_audience.rounds[k].complete.wait(), WAIT_SECONDS)
                desk_latencies.append(desk_audience.rounds[k].last - sent)
        used = machine_use(meter, machine_before, started, args.calls)
        if args.profile:
            server.process.send_signal(signal.SIGUSR2)
            await wait_for_file(args.profile)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*(ws.close() for ws in sockets + desks), return_exceptions=True)
        await clerk.close()
        server.stop()
    return {
        "latencies": latencies,
        **used,
        "call_next_answer": answers,
        "wall_latencies": walls,
        "desk_latencies": desk_latencies,
        "connections": len(sockets),
        "rss_before": rss_before,
        "rss_after": rss_after,
    }


def start_bare_server(port: int, log_dir: Path) -> subprocess.Popen:
    with (log_dir / "bare_ws.log").open("wb") as log:
        return subprocess.Popen(
            [sys.executable, str(BENCH / "bare_ws.py"), str(port)], stdout=log, stderr=log
        )


async def measure_baseline(args: argparse.Namespace, log_dir: Path) -> dict[str, Any]:
    port = free_port()
    process = start_bare_server(port, log_dir)
    sockets: list[ClientConnection] = []
    tasks: list[asyncio.Task] = []
    try:
        base = f"ws://{HOST}:{port}"
        async with asyncio.timeout(30):
            while True:
                try:
                    control = await connect(f"{base}/control", ping_interval=None)
                    break
                except OSError:
                    await asyncio.sleep(0.1)  # polling a starting server, not timing it
        rss_before = rss_bytes(process.pid)
        sockets = await open_all([f"{base}/"] * (args.phones + args.displays))
        rss_after = rss_bytes(process.pid)
        audience = Audience(len(sockets), args.calls)

        async def follow(ws: ClientConnection) -> None:
            async for raw in ws:
                audience.reached(json.loads(raw)["k"], time.perf_counter())

        tasks = [asyncio.create_task(follow(ws)) for ws in sockets]
        padding = "x" * 180  # about as long as a phone view's message
        latencies = []
        meter = Meter(process.pid, database=None)  # it has none; PostgreSQL's own processes
        machine_before, started = meter.sample(), time.perf_counter()
        for k in range(1, args.calls + 1):
            sent = time.perf_counter()
            await control.send(json.dumps({"type": "ticket", "k": k, "padding": padding}))
            await asyncio.wait_for(audience.rounds[k].complete.wait(), WAIT_SECONDS)
            latencies.append(audience.rounds[k].last - sent)
        used = machine_use(meter, machine_before, started, args.calls)
        await control.close()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
        process.terminate()
        process.wait(timeout=10)
    return {
        "latencies": latencies,
        **used,
        "connections": len(sockets),
        "rss_before": rss_before,
        "rss_after": rss_after,
    }


def machine_use(meter: Meter, before: dict, started: float, calls: int) -> dict[str, Any]:
    """What the calls' window since `started` used: CPU ms per call of the server and of this
    process (the clients), and the cores each part of the machine used (Meter.shares)."""
    seconds = time.perf_counter() - started
    cores = Meter.shares(before, meter.sample(), seconds)
    per_call = seconds * 1000 / calls
    return {
        "cpu_ms_per_call": {
            "server": cores["server"] * per_call,
            "clients": cores["client"] * per_call,
        },
        "cores": cores,
    }


def summary(figures: dict[str, Any]) -> dict[str, float]:
    ms = [s * 1000 for s in figures["latencies"]]
    return {
        "server_cpu_ms": figures["cpu_ms_per_call"]["server"],
        "client_cpu_ms": figures["cpu_ms_per_call"]["clients"],
        "p50_ms": percentile(ms, 50),
        "p99_ms": percentile(ms, 99),
        "max_ms": max(ms),
        "other_cores": figures["cores"]["other"],
        "kb_per_connection": (figures["rss_after"] - figures["rss_before"])
        / figures["connections"]
        / 1024,
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    server_url = args.postgres or os.environ.get("AUFRUF_TEST_POSTGRES_URL") or DEFAULT_POSTGRES
    name = f"aufruf_bench_fanout_{uuid.uuid4().hex[:10]}"
    log_dir = Path(tempfile.mkdtemp(prefix="aufruf-bench-fanout-"))
    await create_database(server_url, name)
    try:
        aufruf = await measure_aufruf(args, with_database(server_url, name), log_dir)
    finally:
        await drop_database(server_url, name)
    baseline = await measure_baseline(args, log_dir)
    return {"aufruf": aufruf, "baseline": baseline}


def report(result: dict[str, Any], args: argparse.Namespace) -> tuple[dict[str, Any], bool]:
    ours, bare = summary(result["aufruf"]), summary(result["baseline"])
    clients = result["aufruf"]["connections"]
    answer_ms = [s * 1000 for s in result["aufruf"]["call_next_answer"]]
    wall_ms = [s * 1000 for s in result["aufruf"]["wall_latencies"]]
    print(
        f"fan-out: {args.phones} phone views + {args.displays} displays = {clients} websocket"
        f" clients in this process, {args.calls} calls one after the other"
    )
    print(
        f"{'':28} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'KB/connection':>14}"
        f" {'server CPU ms/call':>19} {'clients CPU ms/call':>20}"
    )
    rows = (("aufruf (PostgreSQL NOTIFY)", ours), ("bare websockets broadcast", bare))
    for label, figures in rows:
        print(
            f"{label:28} {figures['p50_ms']:>8.1f} {figures['p99_ms']:>8.1f}"
            f" {figures['max_ms']:>8.1f} {figures['kb_per_connection']:>14.1f}"
            f" {figures['server_cpu_ms']:>19.1f} {figures['client_cpu_ms']:>20.1f}"
        )
    print(
        f"call-next answered in p50 {percentile(answer_ms, 50):.1f} ms,"
        f" p99 {percentile(answer_ms, 99):.1f} ms; every wall display had the call in p50"
        f" {percentile(wall_ms, 50):.1f} ms, p99 {percentile(wall_ms, 99):.1f} ms (inside the"
        " figures above)"
    )
    if result["aufruf"]["desk_latencies"]:
        desk_ms = [s * 1000 for s in result["aufruf"]["desk_latencies"]]
        print(
            f"with {args.desks} desks open at the counter, every desk had the call in p50"
            f" {percentile(desk_ms, 50):.1f} ms, p99 {percentile(desk_ms, 99):.1f} ms (not in"
            " the figures above: the desks hear after the phones)"
        )
    ms = [s * 1000 for s in result["aufruf"]["latencies"]]
    if len(ms) > 2:  # the first call's statements are compiled and prepared as it runs
        print(
            f"aufruf's first call after the server started took {ms[0]:.1f} ms; the other"
            f" {len(ms) - 1}: p50 {percentile(ms[1:], 50):.1f} ms, p99"
            f" {percentile(ms[1:], 99):.1f} ms (for information: the targets count all calls)"
        )
    print(
        f"other processes used {ours['other_cores']:.0%} of a core during aufruf's calls,"
        f" {bare['other_cores']:.0%} during the baseline's"
        + (
            f" (more than {NOISY:.0%}: the figures are noisy)"
            if max(ours["other_cores"], bare["other_cores"]) > NOISY
            else ""
        )
    )
    within_factor = ours["p99_ms"] <= P99_FACTOR * bare["p99_ms"]
    within_limit = ours["p99_ms"] < P99_LIMIT_MS
    print(
        f"target p99 <= {P99_FACTOR:g}x baseline p99 ({P99_FACTOR * bare['p99_ms']:.1f} ms): "
        + ("met" if within_factor else "MISSED")
        + f" ({ours['p99_ms'] / bare['p99_ms']:.2f}x)"
    )
    print(f"target p99 < {P99_LIMIT_MS:g} ms: " + ("met" if within_limit else "MISSED"))
    return {"aufruf": ours, "baseline": bare, "raw": result}, within_factor and within_limit


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--postgres", help="PostgreSQL server URL (a database is made on it)")
    parser.add_argument("--phones", type=int, default=1000)
    parser.add_argument("--displays", type=int, default=20)
    parser.add_argument(
        "--desks", type=int, default=0, help="desks open at the counter, counted apart"
    )
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument(
        "--runs", type=int, default=1, help="measure this many times, then sum the verdicts up"
    )
    parser.add_argument(
        "--json", type=Path, help="also write the figures to this file (a list with --runs)"
    )
    parser.add_argument(
        "--profile", type=Path, help="profile the server during the calls into this file"
    )
    return parser.parse_args()


def over_runs(runs: list[tuple[dict[str, Any], bool]]) -> None:
    """What the runs' verdicts and p99s came to: one run's p99 of 50 calls is a single
    outlier of either side away from another verdict."""
    ratios = sorted(f["aufruf"]["p99_ms"] / f["baseline"]["p99_ms"] for f, _ in runs)
    ours = sorted(f["aufruf"]["p99_ms"] for f, _ in runs)
    bare = sorted(f["baseline"]["p99_ms"] for f, _ in runs)
    met = sum(1 for _, ok in runs if ok)
    noisy = [
        (number, ok)
        for number, (f, ok) in enumerate(runs, 1)
        if max(f["aufruf"]["other_cores"], f["baseline"]["other_cores"]) > NOISY
    ]
    if noisy:
        print(
            f"runs where other processes used more than {NOISY:.0%} of a core: "
            + ", ".join(f"{n} ({'met' if ok else 'missed'})" for n, ok in noisy)
        )
    print(
        f"over {len(runs)} runs: both targets met in {met}; p99 / baseline p99 min"
        f" {ratios[0]:.2f}x, median {percentile(ratios, 50):.2f}x, max {ratios[-1]:.2f}x;"
        f" p99 median aufruf {percentile(ours, 50):.1f} ms, baseline {percentile(bare, 50):.1f} ms"
    )


def main() -> int:
    args = parse_args()
    runs: list[tuple[dict[str, Any], bool]] = []
    for number in range(1, args.runs + 1):
        if args.runs > 1:
            print(f"--- run {number} of {args.runs}", flush=True)
        runs.append(report(asyncio.run(run(args)), args))
    if args.runs > 1:
        over_runs(runs)
    if args.json:
        figures = [f for f, _ in runs]
        args.json.write_text(json.dumps(figures[0] if args.runs == 1 else figures, indent=2))
    return 0 if all(ok for _, ok in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
