"""The booking benchmark: how fast aufruf answers availability and takes bookings on
PostgreSQL, compared with a bare Litestar endpoint served the same way.

Run it from the repository root:

    PYTHONPATH=. .venv/bin/python bench/booking.py [--postgres URL] [--json PATH]

What it does, in about 30 seconds:

1. Creates a database of its own (aufruf_bench_<random>) on the PostgreSQL server given by
   --postgres, AUFRUF_TEST_POSTGRES_URL or postgresql+asyncpg://postgres@127.0.0.1:5432/test,
   migrates it and adds one location open every day (08:00-12:00, 13:00-18:00, 4 places on a
   5-minute grid, 15 bookable days, no lead time) offering "pass" (5 min) and "id" (10 min).
2. Serves the aufruf app (bench/aufruf_app.py, booking rate limit off) and a bare Litestar
   app (bench/bare_app.py) with uvicorn, each in its own process with the same options: one
   worker, no access log, loop and HTTP parser "auto", 127.0.0.1, a free port.
3. Drives them from this process, a second one, with N concurrent keep-alive HTTP/1.1
   connections (a minimal client over asyncio streams, so the client costs far less CPU per
   request than the server). Each phase warms up, then measures a fixed window:
   - bare:         GET / on the bare app;
   - booking:      each client fetches one day's availability, books a random free start with
                   an e-mail of its own and counts 201 (booked) and 409 slot_taken (lost a race);
   - same start:   rounds in which every client books THE SAME start at once (no target);
   - availability: GETs mixing service combinations and ranges (whole horizon, one week, single
                   days) on the calendar the booking phases left behind, after fetching each
                   once: repeats may come from the app's cache (bookings invalidate it).
   (The issue lists availability before booking; it runs last here so that it reads a calendar
   with bookings in it. A booking counts as successful when its POST answers 201; the rate
   is per second of the phase, whose clients also spend time fetching availability.)
4. Checks over-booking in the database: every capacity_usage row has used <= capacity, and
   used equals what the claims of the non-cancelled appointments add up to, and the number of
   appointments overlapping each slot (recounted from their start and end) is within capacity.
5. Prints a table and the ratios. Targets: availability >= 30% of the bare rate, successful
   bookings >= 5% of it, no over-booking. Exits 1 when one is missed (after printing
   everything); the servers are stopped and the database is dropped in every case.

The table also shows the CPU each process used in a phase's window (server, PostgreSQL, this
client, and "other": the rest of the machine; other jobs running at the same time make the
figures noisy, and the script says so). `--profile availability|booking` runs the aufruf
server under pyinstrument (bench/profiled_app.py; `pip install -e .[bench]`) for that
phase's window and writes where its time goes to a file in the temp directory.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import secrets
import signal
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import partial
from pathlib import Path
from urllib.parse import urlencode
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
    get_outcome,
    interrupt,
    percentile,
    start_server,
    wait_until_ready,
    with_database,
)
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from aufruf import migrate
from aufruf.db import Database

if str(ROOT) not in sys.path:  # tests.builders, when not run with PYTHONPATH=.
    sys.path.insert(0, str(ROOT))

LOCATION = "bench"
ZONE = ZoneInfo("Europe/Berlin")
PLACES = 4
HORIZON_DAYS = 14
AVAILABILITY_TARGET = 0.30
BOOKING_TARGET = 0.05
AVAILABILITY_COMBOS = [["pass"], ["id"], ["pass", "pass"], ["pass", "id"]]
BOOKING_COMBOS = [["pass"], ["pass"], ["id"]]
BOOKINGS_PATH = "/api/v1/appointments"


def availability_path(services: list[str], first: date | None, last: date | None) -> str:
    query: list[tuple[str, str]] = [("location", LOCATION)]
    query += [("service", s) for s in services]
    if first is not None:
        query.append(("from", first.isoformat()))
    if last is not None:
        query.append(("to", last.isoformat()))
    return "/api/v1/availability?" + urlencode(query)


def bookable_days() -> list[date]:
    today = datetime.now(ZONE).date()
    return [today + timedelta(days=i) for i in range(HORIZON_DAYS + 1)]


def availability_mix() -> list[str]:
    """Service combinations x ranges: the whole horizon, the first week, each single day."""
    days = bookable_days()
    ranges = [(None, None), (days[0], days[6])] + [(d, d) for d in days]
    return [availability_path(c, f, t) for c in AVAILABILITY_COMBOS for f, t in ranges]


def outcome_of(status: int, body: bytes) -> str:
    """A booking's outcome: booked, the reason of a 409 (slot_taken, ...), or the status."""
    if status == 201:
        return "booked"
    if status == 409:
        try:
            return json.loads(body).get("reason") or "409"
        except ValueError:
            return "409"
    return f"HTTP {status}"


_emails = itertools.count(1)


def booking_body(services: list[str], start: str) -> bytes:
    n = next(_emails)
    return json.dumps(
        {
            "location": LOCATION,
            "services": services,
            "start": start,
            "name": f"Bench Person {n}",
            "email": f"person{n}@bench.example",
        }
    ).encode()


def availability_get(paths: list[str]) -> Operation:
    async def operation(conn: Connection, rng: random.Random, rec: Recorder) -> None:
        began = time.perf_counter()
        status, _ = await conn.request("GET", rng.choice(paths))
        rec.record("GET availability", began, get_outcome(status))

    return operation


async def fetch_each(port: int, paths: list[str]) -> None:
    conn = Connection(port)
    try:
        for path in paths:
            status, _ = await conn.request("GET", path)
            if status != 200:
                raise RuntimeError(f"GET {path} answered {status}")
    finally:
        await conn.close()


async def look_and_book(conn: Connection, rng: random.Random, rec: Recorder) -> None:
    """A citizen: one day's free starts for their services, then a booking of one of them."""
    services = rng.choice(BOOKING_COMBOS)
    day = rng.choice(bookable_days())
    began = time.perf_counter()
    status, body = await conn.request("GET", availability_path(services, day, day))
    rec.record("GET availability", began, get_outcome(status))
    if status != 200:
        return
    slots = [s for d in json.loads(body)["days"] for s in d["slots"]]
    if not slots:
        rec.record("POST appointment", time.perf_counter(), "no free start")
        return
    began = time.perf_counter()
    status, body = await conn.request(
        "POST", BOOKINGS_PATH, booking_body(services, rng.choice(slots))
    )
    rec.record("POST appointment", began, outcome_of(status, body))


@dataclass
class SameStart:
    rounds: int
    clients: int
    seconds: float
    outcomes: Counter
    latencies: list[float]
    most_booked_per_start: int

    def summary(self) -> dict:
        return {
            "rounds": self.rounds,
            "clients": self.clients,
            "attempts_per_second": round(self.outcomes.total() / self.seconds, 1),
            "p50_ms": round(percentile(self.latencies, 50) * 1000, 2),
            "p99_ms": round(percentile(self.latencies, 99) * 1000, 2),
            "outcomes": dict(self.outcomes),
            "most_booked_per_start": self.most_booked_per_start,
        }


async def same_start(port: int, clients: int, rounds: int) -> SameStart:
    """Rounds in which every client books the same free start at the same moment."""
    conns = [Connection(port) for _ in range(clients)]
    status, body = await conns[0].request("GET", availability_path(["pass"], None, None))
    if status != 200:
        raise RuntimeError(f"availability answered {status}")
    slots = [s for d in json.loads(body)["days"] for s in d["slots"]]
    starts = random.Random(7).sample(slots, min(rounds, len(slots)))
    outcomes: Counter = Counter()
    latencies: list[float] = []
    most = 0

    async def attempt(conn: Connection, start: str) -> str:
        began = time.perf_counter()
        status, body = await conn.request("POST", BOOKINGS_PATH, booking_body(["pass"], start))
        latencies.append(time.perf_counter() - began)
        return outcome_of(status, body)

    began = time.perf_counter()
    try:
        for start in starts:
            results = await asyncio.gather(*(attempt(c, start) for c in conns))
            outcomes.update(results)
            most = max(most, results.count("booked"))
    finally:
        for conn in conns:
            await conn.close()
    return SameStart(len(starts), clients, time.perf_counter() - began, outcomes, latencies, most)


async def prepare(url: str) -> None:
    """Migrate and add the one location the benchmark books at."""
    from tests.builders import a_location

    db = Database(url)
    try:
        await migrate.upgrade(db.engine)
        await a_location(
            db,
            LOCATION,
            places=PLACES,
            grid=5,
            hours="08:00-12:00,13:00-18:00",
            weekdays=(0, 1, 2, 3, 4, 5, 6),
            services={"pass": 5, "id": 10},
            lead_minutes=0,
            horizon_days=HORIZON_DAYS,
            holiday_state=None,
            counters=PLACES,
        )
    finally:
        await db.dispose()


OVER_CAPACITY = """
SELECT count(*) FROM capacity_usage WHERE used > capacity
"""

# claims of the appointments that hold capacity, against the capacity rows they should add up to
CLAIMS_DISAGREE = """
WITH claimed AS (
    SELECT a.location_id, c.kind, c.service_id, c.at, sum(c.n) AS n
    FROM appointment_claim c JOIN appointment a ON a.id = c.appointment_id
    WHERE a.status <> 'cancelled'
    GROUP BY a.location_id, c.kind, c.service_id, c.at
)
SELECT
    count(*) FILTER (WHERE coalesce(claimed.n, 0) <> coalesce(u.used, 0)),
    count(*) FILTER (WHERE claimed.n > u.capacity)
FROM claimed FULL JOIN capacity_usage u USING (location_id, kind, service_id, at)
"""

# independent of the claim rows: appointments overlapping each slot, from start and end
OVERLAPS_EXCEED = """
SELECT
    count(*) FILTER (WHERE overlapping > u.capacity),
    count(*) FILTER (WHERE overlapping <> u.used)
FROM capacity_usage u
CROSS JOIN LATERAL (
    SELECT count(*) AS overlapping FROM appointment a
    WHERE a.location_id = u.location_id AND a.status <> 'cancelled'
      AND a.start_at <= u.at AND u.at < a.end_at
) o
WHERE u.kind = 'slot'
"""


# an appointment that holds no claim would escape both checks above
UNCLAIMED = """
SELECT count(*) FROM appointment a
WHERE a.status <> 'cancelled'
  AND NOT EXISTS (SELECT 1 FROM appointment_claim c WHERE c.appointment_id = a.id)
"""


async def over_booking(url: str) -> dict[str, int]:
    """Slots holding more than their capacity, and rows whose bookkeeping disagrees."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            over_capacity = await conn.scalar(text(OVER_CAPACITY))
            disagree, claims_over = (await conn.execute(text(CLAIMS_DISAGREE))).one()
            overlaps_over, overlaps_disagree = (await conn.execute(text(OVERLAPS_EXCEED))).one()
            unclaimed = await conn.scalar(text(UNCLAIMED))
            appointments = await conn.scalar(text("SELECT count(*) FROM appointment"))
    finally:
        await engine.dispose()
    return {
        "over_booked": max(over_capacity, claims_over, overlaps_over),
        "usage_disagrees_with_claims": disagree,
        "usage_disagrees_with_overlaps": overlaps_disagree,
        "appointments_without_claims": unclaimed,
        "appointments": appointments,
    }


# --- the run ------------------------------------------------------------------------------


async def measure(args: argparse.Namespace, database: str, bare: Server, app: Server) -> dict:
    await wait_until_ready(bare, "/")
    await wait_until_ready(app, "/health")
    common = {"connections": args.connections, "warmup": args.warmup, "duration": args.duration}
    bare_meter, app_meter = Meter(bare.process.pid, database), Meter(app.process.pid, database)

    def profiled(phase: str) -> dict:
        """Start and stop the server's profiler (bench/profiled_app.py) around the window."""
        if args.profile != phase:
            return {}
        pid = app.process.pid
        return {
            "on_window": (
                partial(os.kill, pid, signal.SIGUSR1),
                partial(os.kill, pid, signal.SIGUSR2),
            )
        }

    bare_phase = await drive("bare", bare.port, bare_meter, bare_get, **common)
    booking = await drive(
        "booking", app.port, app_meter, look_and_book, **common, **profiled("booking")
    )
    contention = await same_start(app.port, args.connections, args.rounds)
    paths = availability_mix()
    await fetch_each(app.port, paths)  # so the measured window starts with a warm cache
    availability = await drive(
        "availability", app.port, app_meter, availability_get(paths), **common,
        **profiled("availability"),
    )  # fmt: skip
    phases = [bare_phase, booking, availability]
    return {"phases": {p.name: p for p in phases}, "same_start": contention}


def report(figures: dict, checks: dict, connections: int) -> tuple[dict, list[str]]:
    """Print the table; return the figures for --json and the targets missed."""
    phases: dict[str, Phase] = figures["phases"]
    bare, booking, avail = phases["bare"], phases["booking"], phases["availability"]
    contention: SameStart = figures["same_start"]
    bare_rps = bare.rate("GET /")
    avail_rps = avail.rate("GET availability")
    bookings_ps = booking.rate("POST appointment", "booked")
    avail_ratio = avail_rps / bare_rps if bare_rps else 0.0
    booking_ratio = bookings_ps / bare_rps if bare_rps else 0.0

    rows = [
        ("bare GET /", bare, "GET /"),
        ("availability GET (mix)", avail, "GET availability"),
        ("booking: availability GET", booking, "GET availability"),
        ("booking: POST appointment", booking, "POST appointment"),
    ]
    print(
        f"\n{connections} concurrent connections. CPU used in the measured window, in % of one"
        f" core: server, PostgreSQL, this client, other processes ({os.cpu_count()} cores)"
    )
    print(
        f"{'phase / request':<28}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}"
        f"{'server':>8}{'pg':>6}{'client':>8}{'other':>7}  outcomes"
    )
    for label, phase, kind in rows:
        cpu = phase.cpu
        outcomes = ", ".join(f"{k} {v}" for k, v in phase.outcomes.get(kind, Counter()).items())
        print(
            f"{label:<28}{phase.rate(kind):>8.0f}{phase.p(kind, 50):>8.1f}{phase.p(kind, 99):>8.1f}"
            f"{cpu['server']:>8.0%}{cpu['postgres']:>6.0%}{cpu['client']:>8.0%}{cpu['other']:>7.0%}"
            f"  {outcomes}"
        )
    same = contention.summary()
    print(
        f"{'same start, ' + str(contention.clients) + ' at once':<28}"
        f"{same['attempts_per_second']:>8.0f}{same['p50_ms']:>8.1f}{same['p99_ms']:>8.1f}"
        f"{'':>29}  {', '.join(f'{k} {v}' for k, v in contention.outcomes.items())}"
        f" in {contention.rounds} rounds; at most {contention.most_booked_per_start}"
        f" booked per start ({PLACES} places)"
    )
    busy = [p.name for p in phases.values() if p.cpu["other"] > NOISY]
    if busy:
        print(
            f"note: other processes used more than {NOISY:.0%} of a core during"
            f" {', '.join(busy)}: the figures are noisy, run again on a quiet machine"
        )
    if booking.count("POST appointment", "no free start"):
        print("note: some days were full during the booking phase; add places or days")

    missed = []
    if avail_ratio < AVAILABILITY_TARGET:
        missed.append("availability")
    if booking_ratio < BOOKING_TARGET:
        missed.append("bookings")
    if checks["over_booked"]:
        missed.append("over-booking")
    bookkeeping = ("usage_disagrees_with_claims", "usage_disagrees_with_overlaps",
                   "appointments_without_claims")  # fmt: skip
    if any(checks[name] for name in bookkeeping):
        missed.append("capacity bookkeeping")
    errors = sum(
        n
        for phase in phases.values()
        for outcomes in phase.outcomes.values()
        for outcome, n in outcomes.items()
        if outcome.startswith("HTTP ")
    )
    errors += sum(n for k, n in contention.outcomes.items() if k.startswith("HTTP "))
    if errors:
        missed.append("server errors")

    def verdict(ok: bool) -> str:
        return "ok" if ok else "MISSED"

    slot_taken = booking.count("POST appointment", "slot_taken")
    print()
    print(f"bare endpoint:              {bare_rps:8.0f} req/s")
    print(f"availability:               {avail_rps:8.0f} req/s")
    print(
        f"availability / bare:        {avail_ratio:8.1%}   target >= {AVAILABILITY_TARGET:.0%}"
        f"   {verdict(avail_ratio >= AVAILABILITY_TARGET)}"
    )
    print(f"successful bookings:        {bookings_ps:8.1f} /s")
    print(
        f"bookings / bare:            {booking_ratio:8.1%}   target >= {BOOKING_TARGET:.0%}"
        f"   {verdict(booking_ratio >= BOOKING_TARGET)}"
    )
    print(f"slot_taken (booking phase): {slot_taken:8d}")
    print(f"appointments in database:   {checks['appointments']:8d}")
    print(
        f"capacity rows disagreeing:  {checks['usage_disagrees_with_claims']:8d} with claims,"
        f" {checks['usage_disagrees_with_overlaps']} with overlapping appointments;"
        f" {checks['appointments_without_claims']} appointments without claims"
    )
    print(f"unexpected HTTP answers:    {errors:8d}")
    print(f"over-booked slots: {checks['over_booked']}")
    print("result: " + ("all targets met" if not missed else "MISSED: " + ", ".join(missed)))

    figures_out = {
        "bare_rps": round(bare_rps, 1),
        "availability_rps": round(avail_rps, 1),
        "availability_ratio": round(avail_ratio, 4),
        "bookings_per_second": round(bookings_ps, 1),
        "bookings_ratio": round(booking_ratio, 4),
        "slot_taken": slot_taken,
        "over_booked": checks["over_booked"],
        "checks": checks,
        "unexpected_http_answers": errors,
        "targets": {"availability_ratio": AVAILABILITY_TARGET, "bookings_ratio": BOOKING_TARGET},
        "missed": missed,
        "connections": connections,
        "phases": {name: phase.summary() for name, phase in phases.items()},
        "same_start": same,
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
    parser.add_argument("--connections", type=int, default=32, help="concurrent clients")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds before measuring")
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds per phase")
    parser.add_argument("--rounds", type=int, default=20, help="rounds of the same-start phase")
    parser.add_argument(
        "--profile",
        choices=["availability", "booking"],
        help="profile the aufruf server with pyinstrument during this phase's measured window"
        " (slows it down: the figures of that run are not comparable)",
    )
    args = parser.parse_args()
    if not 1 <= args.connections <= 256 or not 0 < args.duration <= 60 or args.rounds > 200:
        parser.error("keep it bounded: 1-256 connections, at most 60 s a phase, 200 rounds")
    return args


def main() -> int:
    args = parse_args()
    signal.signal(signal.SIGTERM, interrupt)
    name = f"aufruf_bench_{secrets.token_hex(5)}"
    url = with_database(args.postgres, name)
    env = dict(os.environ)
    profile = Path(tempfile.gettempdir()) / f"aufruf-bench-profile-{args.profile}.txt"
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
            asyncio.run(prepare(url))
            bare = start_server("bare", "bare_app:create", env, Path(logs))
            servers.append(bare)
            factory = "profiled_app:create" if args.profile else "aufruf_app:create"
            app = start_server("aufruf", factory, env, Path(logs))
            servers.append(app)
            figures = asyncio.run(measure(args, name, bare, app))
            checks = asyncio.run(over_booking(url))
            out, missed = report(figures, checks, args.connections)
            if "server errors" in missed:
                print(f"\nlast lines of the aufruf server's log:\n{app.log_tail()}")
        finally:
            for server in servers:
                server.stop()
            asyncio.run(drop_database(args.postgres, name))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
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
