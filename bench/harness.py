"""What the benchmarks share (bench/booking.py, bench/queue.py): a minimal HTTP/1.1 client,
phases of concurrent load with a warm-up and a measured window, the CPU each process used,
a database of their own on a PostgreSQL server, and uvicorn servers started the same way."""

from __future__ import annotations

import asyncio
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"

HOST = "127.0.0.1"
DEFAULT_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
SECRET = "bench-secret-key-0123456789-abcdefghijklmnop"
NOISY = 0.25  # of a core used by other processes during a phase


# --- a minimal HTTP/1.1 client ------------------------------------------------------------


class Connection:
    """One keep-alive HTTP/1.1 connection to 127.0.0.1. Bodies must come with a
    Content-Length (Litestar always sends one); it reconnects when the server closes."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: str, path: str, body: bytes | None = None, *, token: str | None = None
    ) -> tuple[int, bytes]:
        """Send one request (with `token` as its bearer token); the status and the body."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(HOST, self.port)
        head = f"{method} {path} HTTP/1.1\r\nHost: {HOST}:{self.port}\r\n"
        if token is not None:
            head += f"Authorization: Bearer {token}\r\n"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self.writer.write(head.encode("ascii") + b"\r\n" + (body or b""))
        header = await self.reader.readuntil(b"\r\n\r\n")
        status = int(header[9:12])
        length, close = 0, False
        for line in header.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                raise RuntimeError(f"{method} {path}: chunked responses are not supported")
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        data = await self.reader.readexactly(length)
        if close:
            await self.close()
        return status, data

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except OSError:
                pass
        self.reader = self.writer = None


# --- CPU accounting -----------------------------------------------------------------------

TICK = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    """Seconds of CPU (user + system) a process has used, from /proc; 0 when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def process_tree_cpu(pid: int) -> float:
    """CPU seconds of a process and of its living descendants (uvicorn's workers)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(entry.name))
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += process_cpu(current)
        todo.extend(parents.get(current, []))
    return total


def postgres_processes(database: str | None) -> dict[int, float]:
    """CPU seconds, by process id, of the PostgreSQL backends serving `database` (none
    without one) and of the server's own processes (postmaster, WAL writer, checkpointer,
    ...); backends of other databases count as "other"."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "postgres":
                continue
            command = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        client_backend = "(" in command  # "postgres: 15/main: user db 127.0.0.1(port) idle"
        if not client_backend or (database is not None and database in command):
            found[int(entry.name)] = process_cpu(int(entry.name))
    return found


def machine_cpu() -> float:
    """CPU seconds all cores of the machine have been busy (not idle, not waiting for I/O)."""
    ticks = [int(n) for n in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / TICK


@dataclass
class Meter:
    """The CPU used by the server under test, its database, this client and the machine."""

    server_pid: int
    database: str | None  # whose PostgreSQL backends count as the server's database
    children: bool = False  # count the server's child processes too (uvicorn --workers N)

    def sample(self) -> dict:
        server = process_tree_cpu if self.children else process_cpu
        return {
            "server": server(self.server_pid),
            "postgres": postgres_processes(self.database),
            "client": time.process_time(),
            "machine": machine_cpu(),
        }

    @staticmethod
    def shares(before: dict, after: dict, seconds: float) -> dict[str, float]:
        """Cores used by each in the window; "other" is what the rest of the machine used
        (another job running at the same time makes the figures noisy)."""
        before_pg, after_pg = before.pop("postgres"), after.pop("postgres")
        used = {k: (after[k] - before[k]) / seconds for k in after}
        used["postgres"] = sum(t - before_pg.get(pid, 0.0) for pid, t in after_pg.items()) / seconds
        machine = used.pop("machine")
        used["other"] = max(0.0, machine - sum(used.values()))
        return used


# --- phases -------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


@dataclass
class Phase:
    """What one phase measured: per request kind, latencies (s) and outcomes, inside the
    measured window only; and the CPU each process used in that window (share of one core)."""

    name: str
    seconds: float = 0.0
    latencies: dict[str, list[float]] = field(default_factory=dict)
    outcomes: dict[str, Counter] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)

    def count(self, kind: str, outcome: str | None = None) -> int:
        outcomes = self.outcomes.get(kind, Counter())
        return outcomes.total() if outcome is None else outcomes[outcome]

    def rate(self, kind: str, outcome: str | None = None) -> float:
        return self.count(kind, outcome) / self.seconds if self.seconds else 0.0

    def p(self, kind: str, q: int) -> float:
        return percentile(self.latencies.get(kind, []), q) * 1000

    def summary(self) -> dict:
        return {
            "seconds": round(self.seconds, 3),
            "cpu": {k: round(v, 3) for k, v in self.cpu.items()},
            "requests": {
                kind: {
                    "count": self.count(kind),
                    "per_second": round(self.rate(kind), 1),
                    "p50_ms": round(self.p(kind, 50), 2),
                    "p99_ms": round(self.p(kind, 99), 2),
                    "outcomes": dict(self.outcomes[kind]),
                }
                for kind in self.outcomes
            },
        }


class Recorder:
    """A warm-up, then a measured window: a request counts when it starts and ends inside it,
    or with `ended_inside` when it ends inside it (for requests that take a good part of the
    window: they would otherwise be missed at its edges, the slow ones most)."""

    def __init__(
        self, phase: Phase, warmup: float, duration: float, *, ended_inside: bool = False
    ) -> None:
        self.phase = phase
        self.start = time.perf_counter() + warmup
        self.end = self.start + duration
        self.ended_inside = ended_inside

    def running(self) -> bool:
        return time.perf_counter() < self.end

    def record(self, kind: str, began: float, outcome: str) -> None:
        now = time.perf_counter()
        if (now if self.ended_inside else began) < self.start or now > self.end:
            return
        self.phase.latencies.setdefault(kind, []).append(now - began)
        self.phase.outcomes.setdefault(kind, Counter())[outcome] += 1


Operation = Callable[[Connection, random.Random, Recorder], Awaitable[None]]


async def drive(
    name: str,
    port: int,
    meter: Meter,
    operation: Operation | list[Operation],
    *,
    connections: int,
    warmup: float,
    duration: float,
    on_window: tuple[Callable[[], None], Callable[[], None]] | None = None,
    ended_inside: bool = False,
) -> Phase:
    """Run `operation` in a loop on `connections` concurrent connections (given a list, one
    operation per connection); call `on_window` (start, end) when the measured window opens
    and closes. `ended_inside`: see Recorder."""
    phase = Phase(name)
    recorder = Recorder(phase, warmup, duration, ended_inside=ended_inside)
    conns = [Connection(port) for _ in range(connections)]
    operations = operation if isinstance(operation, list) else [operation] * connections
    if len(operations) != connections:
        raise ValueError(f"{len(operations)} operations for {connections} connections")

    async def client(index: int) -> None:
        rng = random.Random(index)
        while recorder.running():
            await operations[index](conns[index], rng, recorder)

    async def sample_cpu() -> None:
        await asyncio.sleep(max(0.0, recorder.start - time.perf_counter()))
        if on_window:
            on_window[0]()
        before, began = meter.sample(), time.perf_counter()
        await asyncio.sleep(max(0.0, recorder.end - time.perf_counter()))
        after, phase.seconds = meter.sample(), time.perf_counter() - began
        if on_window:
            on_window[1]()
        phase.cpu = meter.shares(before, after, phase.seconds)

    try:
        await asyncio.gather(sample_cpu(), *(client(i) for i in range(connections)))
    finally:
        for conn in conns:
            await conn.close()
    return phase


def get_outcome(status: int) -> str:
    return "200" if status == 200 else f"HTTP {status}"


async def bare_get(conn: Connection, rng: random.Random, rec: Recorder) -> None:
    began = time.perf_counter()
    status, _ = await conn.request("GET", "/")
    rec.record("GET /", began, get_outcome(status))


# --- database and servers -----------------------------------------------------------------


def asyncpg_url(url: str) -> str:
    return "postgresql+asyncpg://" + url.split("://", 1)[1]


def with_database(url: str, name: str) -> str:
    return asyncpg_url(url).rpartition("/")[0] + "/" + name


async def create_database(server_url: str, name: str) -> None:
    admin = create_async_engine(asyncpg_url(server_url), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await admin.dispose()


async def drop_database(server_url: str, name: str) -> None:
    admin = create_async_engine(asyncpg_url(server_url), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    name: str
    process: subprocess.Popen
    port: int
    log: Path

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_server(
    name: str,
    factory: str,
    env: dict[str, str],
    log_dir: Path,
    *,
    app_dir: Path = BENCH,
    workers: int = 1,
    options: tuple[str, ...] = (),
) -> Server:
    """uvicorn with the same options for both apps; the caller waits for it to answer.
    `factory` is imported from `app_dir`; more than one worker: `--workers N`; `options` are
    more uvicorn options (e.g. those `aufruf serve` sets too)."""
    port = free_port()
    log = log_dir / f"{name}.log"
    command = [
        sys.executable, "-m", "uvicorn", factory, "--factory",
        "--app-dir", str(app_dir), "--host", HOST, "--port", str(port),
        "--loop", "auto", "--http", "auto", "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    if workers != 1:
        command += ["--workers", str(workers)]
    command += options
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    return Server(name, process, port, log)


async def wait_until_ready(server: Server, path: str) -> None:
    """Poll `path` until it answers 200; fail with the server's log if it exits."""
    async with asyncio.timeout(30):
        while True:
            if server.process.poll() is not None:
                raise RuntimeError(f"the {server.name} server exited:\n{server.log_tail()}")
            conn = Connection(server.port)
            try:
                if (await conn.request("GET", path))[0] == 200:
                    return
            except OSError:
                pass
            finally:
                await conn.close()
            await asyncio.sleep(0.1)


def interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")
