"""The aufruf app with a sampling profiler, for `bench/booking.py --profile PHASE` and
`bench/queue.py --profile PHASE`.

SIGUSR1 starts pyinstrument, SIGUSR2 stops it and writes the report to $BENCH_PROFILE: the
share of samples by the innermost package on the stack (where the server's main thread
spends its time), then pyinstrument's call tree. Coroutines appear only while they run, so
time spent waiting for the database's answer is not in the tree; a `socket.send` to
PostgreSQL is, including the time the server is preempted by the backend it wakes.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections import Counter
from pathlib import Path

from litestar import Litestar
from pyinstrument import Profiler
from pyinstrument.session import Session

try:  # served with --app-dir bench (bench/booking.py)
    from aufruf_app import create as create_aufruf
except ImportError:  # served from the repository root as bench.profiled_app (bench/queue.py)
    from bench.aufruf_app import create as create_aufruf

# innermost frame whose file path contains the key -> the owner a sample is counted for
OWNERS = [
    ("aufruf/booking/logic.py", "aufruf.booking.logic"),
    ("aufruf/booking/api.py", "aufruf.booking.api"),
    ("aufruf/booking/service.py", "aufruf.booking.service (own code)"),
    ("aufruf/offices/service.py", "aufruf.offices.service (own code)"),
    ("aufruf/queue/logic.py", "aufruf.queue.logic"),
    ("aufruf/queue/api.py", "aufruf.queue.api"),
    ("aufruf/queue/service.py", "aufruf.queue.service (own code)"),
    ("aufruf/auth/", "aufruf.auth"),
    ("aufruf/logs.py", "logging"),
    ("sqlalchemy", "SQLAlchemy"),
    ("greenlet", "SQLAlchemy"),
    ("asyncpg", "asyncpg"),
    ("logging", "logging"),
    ("msgspec", "msgspec"),
    ("litestar", "Litestar"),
    ("h11", "uvicorn + h11"),
    ("uvicorn", "uvicorn + h11"),
]


def owner_of(stack: list[str]) -> str:
    innermost = stack[-1].split("\x00")
    if innermost[0] in ("socket.send", "socket.recv"):
        peer = "PostgreSQL" if any("asyncpg" in frame for frame in stack) else "HTTP client"
        return f"{innermost[0]} ({peer})"
    if innermost[0].startswith("select") and "selectors" in "".join(stack[-2:]):
        return "idle (waiting in select)"
    for frame in reversed(stack):
        path = frame.split("\x00")[1] if "\x00" in frame else frame
        for key, owner in OWNERS:
            if key in path:
                return owner
    return "asyncio and other"


def by_owner(session: Session) -> str:
    shares: Counter = Counter()
    for stack, seconds in session.frame_records:
        shares[owner_of(stack)] += seconds
    total = sum(shares.values()) or 1.0
    lines = [f"{seconds / total:6.1%} {seconds:8.3f} s  {owner}" for owner, seconds in
             shares.most_common()]  # fmt: skip
    return "samples by innermost package (main thread, wall time):\n" + "\n".join(lines)


def create() -> Litestar:
    app = create_aufruf()
    profiler = Profiler(interval=0.001, async_mode="disabled")

    def write_report() -> None:
        session = profiler.stop()
        report = by_owner(session) + "\n\n" + profiler.output_text(unicode=True)
        Path(os.environ["BENCH_PROFILE"]).write_text(report)

    def listen() -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGUSR1, profiler.start)
        loop.add_signal_handler(signal.SIGUSR2, write_report)

    app.on_startup.append(listen)
    return app
