"""The queue benchmark: how fast aufruf issues tickets and calls them at 20 counters on
PostgreSQL, compared with a bare Litestar endpoint served the same way.

Run it from the repository root:

    PYTHONPATH=. .venv/bin/python bench/queue.py [--postgres URL] [--json PATH]

What it does, in about a minute:

1. Creates a database of its own (aufruf_bench_<random>) on the PostgreSQL server given by
   --postgres, AUFRUF_TEST_POSTGRES_URL or postgresql+asyncpg://postgres@127.0.0.1:5432/test,
   migrates it and adds two locations open every day from 00:00 to 23:59, each with a kiosk
   and 20 counters serving "pass" (ticket letter A); then bearer tokens: the kiosks', one
   clerk token per counter of the first location, and an admin token.
2. Serves the aufruf app (bench/aufruf_app.py) and the bare Litestar app (bench/bare_app.py)
   with uvicorn exactly as bench/booking.py does (bench/harness.py): one worker, no access
   log, loop and HTTP parser "auto", 127.0.0.1, a free port. Each clerk opens its counter.
3. Drives them from this process, a second one, with concurrent keep-alive connections; each
   phase warms up, then measures a fixed window, in which a request counts when it ends
   (a call-next waits seconds for its turn: counting only requests that also start in the
   window, as bench/booking.py does, would miss most of them):
   - bare:       GET / on the bare app (--connections clients);
   - tickets:    --connections clients draw tickets (POST /api/v1/locations/bench/tickets,
                 {"service": "pass"}) with the kiosk's token; the line grows as they do;
   - call-next:  the line is topped up to --waiting tickets (drawn in this process with
                 aufruf's own draw_ticket, source "staff"), then 20 clients, one per counter
                 with its clerk's token, loop POST /api/v1/counters/{C}/call-next (each call
                 first finishes the ticket still current at that counter as done);
   - tickets, 2 workers: the ticket phase again against `uvicorn --workers 2` at the second
                 location (leave it out with --workers 1), to show that the numbers stay
                 unique when two processes draw at once. Two workers share the machine's
                 cores with PostgreSQL and this client, so expect no doubling.
4. Checks the database: per location, local day and letter, the ticket numbers are 1..n with
   no duplicate and no gap, and the location's number counter stands at n; every answered
   ticket has the number it was answered with; no ticket was called twice (events of kind
   "called" per ticket, and ticket ids answered to two calls) or by a counter it does not
   stand at, and every called ticket is current at a counter; there are as many "called"
   events as 200 answers; the event seqs of each location are 1..N without gaps and match
   its sequence row; and, as information, how many waiting tickets a later one was called
   before (skipped).
5. Prints a table and the ratios. Target: tickets issued >= 10% of the bare rate, with no
   duplicate number. Besides the CPU each process used in a phase's window (as in
   bench/booking.py), the table shows what the app's database sessions did, sampled every
   20 ms: on average how many waited for a lock ("lock") and how many sat idle inside a
   transaction, waiting for the app's next statement ("in tx"). Exits 1 when the target is
   missed or a check fails (after printing everything); the servers are stopped and the
   database is dropped in every case.

The kiosk is refused (409 closed) from 23:59 to midnight, Berlin time: when the run could
reach that minute, tickets are drawn with the admin token instead (source "staff", which
has no opening-hours check), and the script says so. `--profile tickets|call-next` runs the
aufruf server under pyinstrument (bench/profiled_app.py) for that phase's window and writes
where its time goes to a file in the temp directory.
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file has the name of the standard library's `queue`, which asyncio's executor, logging
# and Litestar import: run as a script, its folder would come first on sys.path and shadow it.
# Move the folder to the end, where `harness` is still found. (The servers are started from
# the repository root as bench.aufruf_app for the same reason: uvicorn's spawned workers
# would otherwise import this file as `queue`.)
if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    sys.path.append(sys.path.pop(0))

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import signal
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from harness import (
    DEFAULT_POSTGRES,
    NOISY,
    ROOT,
    SECRET,
    Connection,
    Meter,
    Operation,
    Phase,
    Recorder,
    Server,
    bare_get,
    create_database,
    drive,
    drop_database,
    interrupt,
    process_cpu,
    start_server,
    wait_until_ready,
    with_database,
)
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import create_async_engine

from aufruf import migrate
from aufruf.auth.service import create_token
from aufruf.db import Database
from aufruf.offices.model import Kiosk
from aufruf.queue import service as queue_service
from aufruf.queue.model import Ticket

if str(ROOT) not in sys.path:  # tests.builders, when not run with PYTHONPATH=.
    sys.path.insert(0, str(ROOT))

LOCATION = "bench"  # tickets and call-next, one worker
LOCATION_2W = "bench2"  # tickets, two workers
COUNTERS = 20
SERVICE = "pass"
HOURS = "00:00-23:59"  # the kiosk is refused from 23:59 to midnight
ZONE = ZoneInfo("Europe/Berlin")
TICKET_TARGET = 0.10
REFERENCE_TICKETS = 120  # tickets/s of a popular open-source queue manager (the issue)
TOP_UP_BATCH = 250


def tickets_path(location: str) -> str:
    return f"/api/v1/locations/{location}/tickets"


def counter_id(location: str, n: int) -> str:
    return f"{location}-{n}"


def outcome_of(status: int, body: bytes, ok: int, label: str) -> str:
    """`label` for the expected status, the reason of a 409, or the status."""
    if status == ok:
        return label
    if status == 409:
        try:
            return json.loads(body).get("reason") or "409"
        except ValueError:
            return "409"
    return f"HTTP {status}"


# --- set-up -------------------------------------------------------------------------------


@dataclass
class Tokens:
    kiosk: dict[str, str]  # location -> the kiosk's token
    clerks: list[str]  # one per counter of LOCATION, in counter order
    admin: str


async def prepare(url: str) -> Tokens:
    """Migrate; add the two locations, their kiosks and the tokens."""
    from tests.builders import a_location

    db = Database(url)
    try:
        await migrate.upgrade(db.engine)
        for location in (LOCATION, LOCATION_2W):
            await a_location(
                db,
                location,
                weekdays=tuple(range(7)),
                hours=HOURS,
                services={SERVICE: 10},
                lead_minutes=0,
                holiday_state=None,
                counters=COUNTERS,
            )
        now = datetime.now(UTC)
        async with db.write() as session:
            for location in (LOCATION, LOCATION_2W):
                session.add(
                    Kiosk(id=f"{location}-kiosk", location_id=location, name="Kiosk", active=True)
                )
            await session.flush()
            kiosk = {
                location: (await create_token(session, now, role="kiosk", location=location)).token
                for location in (LOCATION, LOCATION_2W)
            }
            clerks = [
                (
                    await create_token(
                        session,
                        now,
                        role="clerk",
                        location=LOCATION,
                        counter=counter_id(LOCATION, n),
                    )
                ).token
                for n in range(1, COUNTERS + 1)
            ]
            admin = (await create_token(session, now, role="admin")).token
    finally:
        await db.dispose()
    return Tokens(kiosk, clerks, admin)


def kiosk_open_throughout(seconds: float) -> bool:
    """Whether the kiosk may draw for the next `seconds` (it may not from 23:59 to 24:00)."""
    local = datetime.now(ZONE)
    refused_from = local.replace(hour=23, minute=59, second=0, microsecond=0)
    return not (refused_from - timedelta(seconds=seconds) <= local)


async def open_counters(port: int, location: str, tokens: list[str]) -> None:
    conn = Connection(port)
    try:
        for n, token in enumerate(tokens, start=1):
            path = f"/api/v1/counters/{counter_id(location, n)}/open"
            status, body = await conn.request("POST", path, token=token)
            if status != 200:
                raise RuntimeError(f"POST {path} answered {status}: {body[:300]!r}")
    finally:
        await conn.close()


async def top_up(url: str, location: str, waiting: int) -> tuple[int, float]:
    """Draw tickets with aufruf's own draw_ticket until `waiting` tickets wait at `location`;
    returns how many were drawn and the seconds it took."""
    began = time.perf_counter()
    db = Database(url)
    drawn = 0
    try:
        async with db.read() as session:
            already = await session.scalar(
                select(func.count())
                .select_from(Ticket)
                .where(Ticket.location_id == location, Ticket.status == "waiting")
            )
        missing = max(0, waiting - already)
        while drawn < missing:
            batch = min(TOP_UP_BATCH, missing - drawn)
            change = queue_service.Change()
            async with db.write() as session:
                for _ in range(batch):
                    await queue_service.draw_ticket(
                        session,
                        change,
                        datetime.now(UTC),
                        location,
                        [SERVICE],
                        source="staff",
                        actor="bench",
                    )
            drawn += batch
    finally:
        await db.dispose()
    return drawn, time.perf_counter() - began


def children_of(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


async def wait_for_workers(server: Server, workers: int) -> None:
    """Wait until the supervisor has its workers and their start-up CPU has settled (each
    has imported the app and listens), so the warm-up does not go to one worker alone."""
    async with asyncio.timeout(60):
        while True:
            if server.process.poll() is not None:
                raise RuntimeError(f"the {server.name} server exited:\n{server.log_tail()}")
            children = children_of(server.process.pid)
            if len(children) >= workers:
                before = [process_cpu(pid) for pid in children]
                await asyncio.sleep(0.5)
                after = [process_cpu(pid) for pid in children]
                if all(b - a < 0.05 for a, b in zip(before, after, strict=True)):
                    return
            else:
                await asyncio.sleep(0.1)


# --- the load -----------------------------------------------------------------------------


@dataclass
class Answers:
    """Everything the server answered in a phase, warm-up included, for the checks."""

    tickets: list[tuple[int, str]] = field(default_factory=list)  # (id, number) drawn
    done_at: list[float] = field(default_factory=list)  # when each draw was answered
    calls: list[tuple[str, int]] = field(default_factory=list)  # (counter, ticket id) called
    window: tuple[float, float] = (0.0, 0.0)


def draw_tickets(location: str, token: str, answers: Answers) -> Operation:
    path, body = tickets_path(location), json.dumps({"service": SERVICE}).encode()

    async def operation(conn: Connection, _rng: object, rec: Recorder) -> None:
        answers.window = (rec.start, rec.end)
        began = time.perf_counter()
        status, data = await conn.request("POST", path, body, token=token)
        if status == 201:
            ticket = json.loads(data)
            answers.tickets.append((ticket["id"], ticket["number"]))
            answers.done_at.append(time.perf_counter())
        rec.record("POST ticket", began, outcome_of(status, data, 201, "issued"))

    return operation


def call_next(location: str, n: int, token: str, answers: Answers) -> Operation:
    counter = counter_id(location, n)
    path = f"/api/v1/counters/{counter}/call-next"

    async def operation(conn: Connection, _rng: object, rec: Recorder) -> None:
        began = time.perf_counter()
        status, data = await conn.request("POST", path, token=token)
        if status == 200:
            answers.calls.append((counter, json.loads(data)["id"]))
        label = "nobody waiting" if status == 204 else outcome_of(status, data, 200, "called")
        rec.record("POST call-next", began, label)

    return operation


def rate_at_edges(answers: Answers) -> dict[str, float]:
    """Tickets issued per second in the first and in the last second of the window, and how
    many tickets waited when the window opened and when it closed (all were drawn here)."""
    start, end = answers.window
    done = answers.done_at
    edge = min(1.0, (end - start) / 2)
    return {
        "first_second_per_second": sum(start <= t < start + edge for t in done) / edge,
        "last_second_per_second": sum(end - edge <= t < end for t in done) / edge,
        "waiting_at_start": sum(t < start for t in done),
        "waiting_at_end": sum(t < end for t in done),
    }


# what the app's database sessions do: waiting for a row lock, idle inside a transaction
# (the lock holder waits for the app's next statement), or working
SESSIONS = """
SELECT count(*) FILTER (WHERE state = 'active' AND wait_event_type = 'Lock'),
       count(*) FILTER (WHERE state = 'idle in transaction'),
       count(*) FILTER (WHERE state = 'active' AND wait_event_type IS DISTINCT FROM 'Lock')
FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'
"""


class Sessions:
    """Samples the benchmark database's sessions every 20 ms while a window is open (on its
    own connection); per phase, the average number waiting for a lock, idle in a
    transaction, and active otherwise."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.current: str | None = None
        self.samples: dict[str, list[tuple[int, int, int]]] = {}
        self.task: asyncio.Task | None = None

    async def run(self) -> None:
        engine = create_async_engine(self.url, pool_size=1)
        try:
            async with engine.connect() as conn:
                await conn.execute(text("SET application_name = 'bench sampler'"))
                await conn.commit()
                while True:
                    if self.current is not None:
                        row = (await conn.execute(text(SESSIONS))).one()
                        await conn.commit()
                        self.samples.setdefault(self.current, []).append(tuple(row))
                    await asyncio.sleep(0.02)
        finally:
            await engine.dispose()

    def start(self) -> None:
        self.task = asyncio.create_task(self.run())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    def averages(self, phase: str) -> dict[str, float]:
        rows = self.samples.get(phase) or [(0, 0, 0)]
        return {
            name: sum(r[i] for r in rows) / len(rows)
            for i, name in enumerate(("lock_wait", "idle_in_transaction", "active"))
        }


# --- checks -------------------------------------------------------------------------------

# per location, day and letter: the tickets' numbers against 1..n and the number counter
NUMBERS = """
WITH issued AS (
    SELECT location_id, day, left(number, 1) AS letter, count(*) AS tickets,
           count(DISTINCT number) AS distinct_numbers,
           min(substr(number, 2)::int) AS lowest, max(substr(number, 2)::int) AS highest
    FROM ticket GROUP BY 1, 2, 3
)
SELECT location_id, day, letter, coalesce(tickets, 0), coalesce(distinct_numbers, 0),
       coalesce(lowest, 1), coalesce(highest, 0), n.last
FROM issued FULL JOIN ticket_number n USING (location_id, day, letter)
ORDER BY 1, 2, 3
"""

# per location: the event seqs against 1..N and the sequence row
SEQS = """
SELECT location_id, count(*), count(DISTINCT e.seq), min(e.seq), max(e.seq), s.seq
FROM queue_event e LEFT JOIN location_sequence s USING (location_id)
GROUP BY location_id, s.seq
ORDER BY 1
"""

CALLED_TWICE = """
SELECT count(*) FROM (
    SELECT ticket_id FROM queue_event WHERE kind = 'called'
    GROUP BY ticket_id HAVING count(*) > 1
) twice
"""

# a "called" event naming another counter than the ticket stands at
CALLED_ELSEWHERE = """
SELECT count(*) FROM queue_event e JOIN ticket t ON t.id = e.ticket_id
WHERE e.kind = 'called' AND e.counter_id IS DISTINCT FROM t.counter_id
"""

# called or serving, but current at no counter
ORPHANS = """
SELECT count(*) FROM ticket t
WHERE t.status IN ('called', 'serving')
  AND NOT EXISTS (SELECT 1 FROM counter_state c WHERE c.current_ticket_id = t.id)
"""

# waiting tickets a later one (in the call order: arrival, then id) was called before
SKIPPED = """
WITH last_called AS (
    SELECT arrived_at, id FROM ticket
    WHERE location_id = :location AND called_at IS NOT NULL AND priority = 0
    ORDER BY arrived_at DESC, id DESC LIMIT 1
)
SELECT count(*) FROM ticket w, last_called c
WHERE w.location_id = :location AND w.status = 'waiting' AND w.priority = 0
  AND (w.arrived_at, w.id) < (c.arrived_at, c.id)
"""

ANSWERED = """
SELECT id, day, number, location_id FROM ticket WHERE id = ANY(:ids)
"""


async def audit(url: str, answers: dict[str, Answers], topped_up: int) -> dict:
    """The database's view of the run (see the module's docstring, step 4)."""
    db = Database(url)
    try:
        async with db.read() as session:
            numbers = (await session.execute(text(NUMBERS))).all()
            seqs = (await session.execute(text(SEQS))).all()
            called_twice = await session.scalar(text(CALLED_TWICE))
            called_elsewhere = await session.scalar(text(CALLED_ELSEWHERE))
            orphans = await session.scalar(text(ORPHANS))
            skipped = await session.scalar(text(SKIPPED), {"location": LOCATION})
            called_events = await session.scalar(
                text("SELECT count(*) FROM queue_event WHERE kind = 'called'")
            )
            tickets_at = dict(
                (
                    await session.execute(
                        text("SELECT location_id, count(*) FROM ticket GROUP BY location_id")
                    )
                ).all()
            )
            drawn = [t for a in answers.values() for t in a.tickets]
            rows = (await session.execute(text(ANSWERED), {"ids": [i for i, _ in drawn]})).all()
    finally:
        await db.dispose()

    stored = {row.id: row for row in rows}
    answered_wrong = sum(1 for i, number in drawn if i not in stored or stored[i].number != number)
    answered_numbers = Counter(
        (stored[i].location_id, stored[i].day, number) for i, number in drawn if i in stored
    )
    calls = [c for a in answers.values() for c in a.calls]
    per_letter = [
        {
            "location": loc,
            "day": day.isoformat(),
            "letter": letter,
            "tickets": tickets,
            "duplicates": tickets - distinct,
            "lowest": lowest,
            "missing": highest - distinct,  # of 1..highest
            "highest": highest,
            "counter_last": last,
        }
        for loc, day, letter, tickets, distinct, lowest, highest, last in numbers
    ]
    per_location = [
        {"location": loc, "events": n, "duplicates": n - distinct, "first": first,
         "last": last, "missing": last - distinct, "sequence_row": row}
        for loc, n, distinct, first, last, row in seqs
    ]  # fmt: skip
    expected_tickets = {
        loc: len(a.tickets) + (topped_up if loc == LOCATION else 0) for loc, a in answers.items()
    }
    return {
        "numbers": per_letter,
        "duplicate_numbers": sum(r["duplicates"] for r in per_letter),
        "missing_numbers": sum(max(0, r["missing"]) for r in per_letter),
        "number_counter_disagrees": sum(r["counter_last"] != r["highest"] for r in per_letter),
        "answered_number_differs": answered_wrong,
        "same_number_answered_twice": sum(n - 1 for n in answered_numbers.values() if n > 1),
        "tickets_in_database": tickets_at,
        "tickets_expected": expected_tickets,
        "events": per_location,
        "event_seq_gaps": sum(max(0, r["missing"]) for r in per_location),
        "event_seq_duplicates": sum(r["duplicates"] for r in per_location),
        "event_sequence_disagrees": sum(r["sequence_row"] != r["last"] for r in per_location),
        "called_events": called_events,
        "calls_answered": len(calls),
        "called_twice": called_twice,
        "ticket_answered_to_two_calls": sum(
            n - 1 for n in Counter(i for _, i in calls).values() if n > 1
        ),
        "called_at_another_counter": called_elsewhere,
        "called_but_current_nowhere": orphans,
        "skipped_waiting": skipped,
    }


# --- the run ------------------------------------------------------------------------------


async def measure(
    args: argparse.Namespace, database: str, url: str, env: dict[str, str], logs: Path,
    servers: list[Server],
) -> dict:  # fmt: skip
    tokens = await prepare(url)
    budget = 4 * (args.warmup + args.duration) + 120
    kiosk = kiosk_open_throughout(budget)
    draw_token = tokens.kiosk if kiosk else dict.fromkeys(tokens.kiosk, tokens.admin)

    bare = start_server("bare", "bench.bare_app:create", env, logs, app_dir=ROOT)
    servers.append(bare)
    factory = "bench.profiled_app:create" if args.profile else "bench.aufruf_app:create"
    app = start_server("aufruf", factory, env, logs, app_dir=ROOT)
    servers.append(app)
    await wait_until_ready(bare, "/")
    await wait_until_ready(app, "/health")
    await open_counters(app.port, LOCATION, tokens.clerks)

    common = {"warmup": args.warmup, "duration": args.duration, "ended_inside": True}
    bare_meter, app_meter = Meter(bare.process.pid, database), Meter(app.process.pid, database)
    sessions = Sessions(url)

    def window(phase: str, pid: int | None = None) -> dict:
        """Sample the database's sessions during the window, and with --profile PHASE start
        and stop the server's profiler (bench/profiled_app.py) around it."""
        profile = args.profile == phase and pid is not None

        def opens() -> None:
            sessions.current = phase
            if profile:
                os.kill(pid, signal.SIGUSR1)

        def closes() -> None:
            sessions.current = None
            if profile:
                os.kill(pid, signal.SIGUSR2)

        return {"on_window": (opens, closes)}

    answers = {LOCATION: Answers()}
    phases: dict[str, Phase] = {}
    sessions.start()
    try:
        phases["bare"] = await drive(
            "bare", bare.port, bare_meter, bare_get, connections=args.connections, **common,
            **window("bare"),
        )  # fmt: skip
        phases["tickets"] = await drive(
            "tickets", app.port, app_meter,
            draw_tickets(LOCATION, draw_token[LOCATION], answers[LOCATION]),
            connections=args.connections, **common, **window("tickets", app.process.pid),
        )  # fmt: skip
        edges = rate_at_edges(answers[LOCATION])
        topped_up, top_up_seconds = await top_up(url, LOCATION, args.waiting)
        callers = [
            call_next(LOCATION, n, token, answers[LOCATION])
            for n, token in enumerate(tokens.clerks, start=1)
        ]
        phases["call-next"] = await drive(
            "call-next", app.port, app_meter, callers, connections=COUNTERS, **common,
            **window("call-next", app.process.pid),
        )  # fmt: skip

        if args.workers > 1:
            app.stop()  # idle by now; out of the way of the workers
            answers[LOCATION_2W] = Answers()
            multi = start_server(
                f"aufruf-{args.workers}w", "bench.aufruf_app:create", env, logs,
                app_dir=ROOT, workers=args.workers,
            )  # fmt: skip
            servers.append(multi)
            await wait_until_ready(multi, "/health")
            await wait_for_workers(multi, args.workers)
            await open_counters(multi.port, LOCATION_2W, [tokens.admin] * COUNTERS)
            phases["tickets-workers"] = await drive(
                "tickets-workers", multi.port, Meter(multi.process.pid, database, children=True),
                draw_tickets(LOCATION_2W, draw_token[LOCATION_2W], answers[LOCATION_2W]),
                connections=args.connections, **common, **window("tickets-workers"),
            )  # fmt: skip
            multi.stop()
    finally:
        await sessions.stop()

    return {
        "phases": phases,
        "sessions": {name: sessions.averages(name) for name in phases},
        "answers": answers,
        "edges": edges,
        "topped_up": topped_up,
        "top_up_seconds": top_up_seconds,
        "kiosk": kiosk,
        "checks": await audit(url, answers, topped_up),
    }


def report(figures: dict, args: argparse.Namespace) -> tuple[dict, list[str]]:
    """Print the table; return the figures for --json and the targets missed."""
    phases: dict[str, Phase] = figures["phases"]
    checks = figures["checks"]
    bare, tickets, calls = phases["bare"], phases["tickets"], phases["call-next"]
    workers = phases.get("tickets-workers")
    bare_rps = bare.rate("GET /")
    tickets_ps = tickets.rate("POST ticket", "issued")
    calls_ps = calls.rate("POST call-next", "called")
    ticket_ratio = tickets_ps / bare_rps if bare_rps else 0.0
    call_ratio = calls_ps / bare_rps if bare_rps else 0.0

    rows = [
        ("bare GET /", bare, "GET /", args.connections),
        ("ticket POST", tickets, "POST ticket", args.connections),
        (f"call-next POST, {COUNTERS} ctrs", calls, "POST call-next", COUNTERS),
    ]
    if workers is not None:
        rows.append((f"ticket POST, {args.workers} workers", workers, "POST ticket",
                     args.connections))  # fmt: skip
    print(
        "\nCPU used in the measured window, in % of one core: server (all its workers),"
        f" PostgreSQL, this client, other processes ({os.cpu_count()} cores); the app's"
        " database sessions on average: waiting for a lock, idle in a transaction"
    )
    print(
        f"{'phase / request':<30}{'conns':>6}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}"
        f"{'server':>8}{'pg':>6}{'client':>8}{'other':>7}{'lock':>6}{'in tx':>6}  outcomes"
    )
    for label, phase, kind, conns in rows:
        cpu, db = phase.cpu, figures["sessions"][phase.name]
        outcomes = ", ".join(f"{k} {v}" for k, v in phase.outcomes.get(kind, Counter()).items())
        print(
            f"{label:<30}{conns:>6}{phase.rate(kind):>8.0f}{phase.p(kind, 50):>8.1f}"
            f"{phase.p(kind, 99):>8.1f}{cpu['server']:>8.0%}{cpu['postgres']:>6.0%}"
            f"{cpu['client']:>8.0%}{cpu['other']:>7.0%}{db['lock_wait']:>6.1f}"
            f"{db['idle_in_transaction']:>6.1f}  {outcomes}"
        )
    busy = [p.name for p in phases.values() if p.cpu["other"] > NOISY]
    if busy:
        print(
            f"note: other processes used more than {NOISY:.0%} of a core during"
            f" {', '.join(busy)}: the figures are noisy, run again on a quiet machine"
        )
    if not figures["kiosk"]:
        print(
            "note: the kiosk is refused from 23:59 to midnight (Berlin), which this run could"
            " reach: tickets were drawn with an admin token (source staff, no hours check)"
        )
    if calls.count("POST call-next", "nobody waiting"):
        print("note: the line ran dry during the call-next phase; raise --waiting")
    edges = figures["edges"]
    print(
        f"note: tickets/s in the window's first second {edges['first_second_per_second']:.0f},"
        f" in its last {edges['last_second_per_second']:.0f}; the line grew from"
        f" {edges['waiting_at_start']} to {edges['waiting_at_end']} waiting tickets (every"
        " draw answers with the whole line's people-ahead and wait estimates)"
    )
    print(
        f"note: call-next ran on a line of {args.waiting} waiting tickets"
        f" ({figures['topped_up']} drawn in {figures['top_up_seconds']:.1f} s before it)"
    )

    errors = sum(
        n
        for phase in phases.values()
        for outcomes in phase.outcomes.values()
        for outcome, n in outcomes.items()
        if outcome.startswith("HTTP ")
    )
    refused = sum(
        n
        for phase in (tickets, workers)
        if phase is not None
        for outcome, n in phase.outcomes.get("POST ticket", Counter()).items()
        if outcome != "issued" and not outcome.startswith("HTTP ")
    )
    tickets_differ = {
        loc: (checks["tickets_in_database"].get(loc, 0), n)
        for loc, n in checks["tickets_expected"].items()
        if checks["tickets_in_database"].get(loc, 0) != n
    }
    missed = []
    if ticket_ratio < TICKET_TARGET:
        missed.append("ticket issue rate")
    numbering = ("duplicate_numbers", "same_number_answered_twice", "answered_number_differs")
    if any(checks[k] for k in numbering):
        missed.append("duplicate numbers")
    if checks["missing_numbers"] or checks["number_counter_disagrees"] or tickets_differ:
        missed.append("ticket numbering")
    calling = ("called_twice", "ticket_answered_to_two_calls", "called_at_another_counter",
               "called_but_current_nowhere")  # fmt: skip
    if any(checks[k] for k in calling) or checks["called_events"] != checks["calls_answered"]:
        missed.append("called twice")
    if (checks["event_seq_gaps"] or checks["event_seq_duplicates"]
            or checks["event_sequence_disagrees"]):  # fmt: skip
        missed.append("event seqs")
    if errors:
        missed.append("server errors")
    if refused:
        missed.append("tickets refused")

    def verdict(ok: bool) -> str:
        return "ok" if ok else "MISSED"

    print()
    print(f"bare endpoint:                 {bare_rps:8.0f} req/s")
    print(
        f"tickets issued:                {tickets_ps:8.1f} /s"
        f"    p50 {tickets.p('POST ticket', 50):.1f} ms, p99 {tickets.p('POST ticket', 99):.1f} ms"
    )
    print(
        f"tickets / bare:                {ticket_ratio:8.1%}   target >= {TICKET_TARGET:.0%}"
        f"   {verdict(ticket_ratio >= TICKET_TARGET)}"
        f"   (the issue's reference: ~{REFERENCE_TICKETS} tickets/s)"
    )
    print(
        f"calls (call-next):             {calls_ps:8.1f} /s"
        f"    p50 {calls.p('POST call-next', 50):.1f} ms,"
        f" p99 {calls.p('POST call-next', 99):.1f} ms"
    )
    print(f"calls / bare:                  {call_ratio:8.1%}   (no target)")
    if workers is not None:
        workers_ps = workers.rate("POST ticket", "issued")
        at_2w = [r for r in checks["numbers"] if r["location"] == LOCATION_2W]
        print(
            f"tickets, {args.workers} workers:             {workers_ps:8.1f} /s"
            f"    {workers_ps / bare_rps if bare_rps else 0:.1%} of the bare endpoint (one"
            f" worker); {sum(r['tickets'] for r in at_2w)} tickets,"
            f" duplicate numbers {sum(r['duplicates'] for r in at_2w)},"
            f" missing {sum(max(0, r['missing']) for r in at_2w)}"
        )
    for row in checks["numbers"]:
        print(
            f"numbers {row['location']} {row['day']} {row['letter']}:"
            f"{' ' * max(1, 14 - len(row['location']))}{row['tickets']:8d} tickets,"
            f" {row['letter']}001..{row['letter']}{row['highest']:03d},"
            f" {row['duplicates']} duplicates, {max(0, row['missing'])} missing,"
            f" counter at {row['counter_last']}"
        )
    if tickets_differ:
        print(f"tickets in database differ from answers + pre-drawn: {tickets_differ}")
    print(
        f"answers: {checks['answered_number_differs']} with another number than stored,"
        f" {checks['same_number_answered_twice']} numbers answered twice"
    )
    print(
        f"called:                        {checks['calls_answered']:8d} answered,"
        f" {checks['called_events']} 'called' events; {checks['called_twice']} tickets called"
        f" twice, {checks['ticket_answered_to_two_calls']} answered to two calls,"
        f" {checks['called_at_another_counter']} at another counter,"
        f" {checks['called_but_current_nowhere']} called but current nowhere"
    )
    print(
        f"skipped waiting tickets:       {checks['skipped_waiting']:8d}   (information: waiting"
        " behind the last ticket called)"
    )
    for row in checks["events"]:
        print(
            f"event seqs {row['location']}:{' ' * max(1, 19 - len(row['location']))}"
            f"{row['events']:8d} events, {row['first']}..{row['last']},"
            f" {max(0, row['missing'])} gaps, {row['duplicates']} duplicates,"
            f" sequence row at {row['sequence_row']}"
        )
    print(f"unexpected HTTP answers:       {errors:8d}")
    duplicates = checks["duplicate_numbers"] + checks["same_number_answered_twice"]
    print(f"duplicate numbers: {duplicates}")
    print("result: " + ("all targets met" if not missed else "MISSED: " + ", ".join(missed)))

    figures_out = {
        "bare_rps": round(bare_rps, 1),
        "tickets_per_second": round(tickets_ps, 1),
        "tickets_ratio": round(ticket_ratio, 4),
        "calls_per_second": round(calls_ps, 1),
        "calls_ratio": round(call_ratio, 4),
        "tickets_per_second_workers": (
            round(workers.rate("POST ticket", "issued"), 1) if workers else None
        ),
        "workers": args.workers,
        "duplicate_numbers": duplicates,
        "kiosk_token": figures["kiosk"],
        "ticket_window_edges": edges,
        "waiting_for_call_next": args.waiting,
        "checks": checks,
        "unexpected_http_answers": errors,
        "targets": {"tickets_ratio": TICKET_TARGET},
        "missed": missed,
        "connections": args.connections,
        "phases": {name: phase.summary() for name, phase in phases.items()},
        "database_sessions": {
            name: {k: round(v, 2) for k, v in averages.items()}
            for name, averages in figures["sessions"].items()
        },
    }
    return figures_out, missed


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--postgres",
        default=os.environ.get("AUFRUF_TEST_POSTGRES_URL") or DEFAULT_POSTGRES,
        help="a PostgreSQL database URL; the benchmark creates and drops its own database there",
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument(
        "--connections", type=int, default=32, help="concurrent clients (bare and tickets)"
    )
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds before measuring")
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds per phase")
    parser.add_argument(
        "--waiting", type=int, default=3000, help="waiting tickets when call-next starts"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="uvicorn workers of the extra ticket phase (1: leave that phase out)",
    )
    parser.add_argument(
        "--profile",
        choices=["tickets", "call-next"],
        help="profile the aufruf server with pyinstrument during this phase's measured window"
        " (slows it down: the figures of that run are not comparable)",
    )
    args = parser.parse_args()
    if (
        not 1 <= args.connections <= 256
        or not 0 < args.duration <= 60
        or not 0 <= args.warmup <= 60
        or not 0 <= args.waiting <= 20000
        or not 1 <= args.workers <= 8
    ):
        parser.error(
            "keep it bounded: 1-256 connections, at most 60 s a phase, 20000 waiting tickets,"
            " 8 workers"
        )
    return args


def main() -> int:
    args = parse_args()
    signal.signal(signal.SIGTERM, interrupt)
    name = f"aufruf_bench_{secrets.token_hex(5)}"
    url = with_database(args.postgres, name)
    env = dict(os.environ)
    profile = Path(tempfile.gettempdir()) / f"aufruf-bench-queue-profile-{args.profile}.txt"
    env.update(
        AUFRUF_DATABASE_URL=url,
        AUFRUF_SECRET_KEY=SECRET,
        BENCH_PROFILE=str(profile),
        PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    )
    servers: list[Server] = []
    with tempfile.TemporaryDirectory(prefix="aufruf-bench-") as logs:
        try:
            print(f"database {name} on {args.postgres.rpartition('@')[2].rpartition('/')[0]}")
            asyncio.run(create_database(args.postgres, name))
            figures = asyncio.run(measure(args, name, url, env, Path(logs), servers))
            out, missed = report(figures, args)
            if "server errors" in missed:
                for server in servers:
                    print(f"\nlast lines of the {server.name} server's log:\n{server.log_tail()}")
        finally:
            for server in servers:
                server.stop()
            asyncio.run(drop_database(args.postgres, name))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, default=str) + "\n")
        print(f"figures written to {args.json}")
    if args.profile:
        print(f"profile of the {args.profile} phase written to {profile}")
    return 1 if missed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted: the servers are stopped and the database is dropped", file=sys.stderr)
        sys.exit(130)
