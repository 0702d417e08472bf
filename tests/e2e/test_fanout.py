"""Two app processes on one PostgreSQL database: a call made through instance 1 reaches a wall
display connected to instance 2, through Redis pub/sub (AUFRUF_REDIS_URL) and through
PostgreSQL LISTEN/NOTIFY (no Redis). With Redis, the pub/sub connections are killed mid-stream,
and a Redis server of the test's own is stopped and started again mid-stream: the display gets
the calls made meanwhile and after, and ends in the database's state."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from websockets.asyncio.client import ClientConnection, connect

from aufruf import migrate
from aufruf.auth.service import create_token
from aufruf.clock import SystemClock
from aufruf.db import Database
from aufruf.offices.model import Kiosk
from tests.builders import a_location
from tests.conftest import (
    REQUIRE_ALL,
    SECRET,
    _asyncpg,
    _with_database,
    need_postgres,
    need_redis,
)
from tests.e2e.test_demo import free_port, wait_until_serving

TIMEOUT = 15.0
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def database() -> AsyncIterator[str]:
    """A PostgreSQL database of this test's own, migrated, with an office open all day."""
    url = need_postgres()
    name = f"aufruf_fanout_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(_asyncpg(url), isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    own = _with_database(url, name)
    db = Database(own)
    try:
        await migrate.upgrade(db.engine)
        await a_location(
            db, hours="00:00-23:59", weekdays=tuple(range(7)), holiday_state=None, counters=2
        )
        await db.dispose()
        yield own
    finally:
        await db.dispose()
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


async def tokens(url: str) -> dict[str, str]:
    db = Database(url)
    now = SystemClock().now()
    try:
        async with db.write() as session:
            session.add(Kiosk(id="amt-kiosk", location_id="amt", name="Eingang", active=True))
            await session.flush()
            kiosk = await create_token(session, now, role="kiosk", location="amt")
            clerk = await create_token(session, now, role="clerk", location="amt", counter="amt-1")
            return {"kiosk": kiosk.token, "clerk": clerk.token}
    finally:
        await db.dispose()


class Instances:
    def __init__(self, database_url: str, redis_url: str | None, logs: Path) -> None:
        self.env = {
            "PATH": "/usr/bin:/bin",
            "AUFRUF_DATABASE_URL": database_url,
            "AUFRUF_SECRET_KEY": SECRET,
            "AUFRUF_RUN_WORKER": "0",
            "AUFRUF_BOOKING_RATE_LIMIT": "0",
        }
        if redis_url:
            self.env["AUFRUF_REDIS_URL"] = redis_url
        self.logs = logs
        self.processes: list[subprocess.Popen] = []
        self.bases: list[str] = []

    def start(self, count: int = 2) -> None:
        for i in range(count):
            port = free_port()
            out = (self.logs / f"instance-{i}.log").open("w")
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "aufruf.app:app_from_env",
                    "--factory",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--log-level",
                    "warning",
                ],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
            self.processes.append(process)
            self.bases.append(f"http://127.0.0.1:{port}")
        for base, process in zip(self.bases, self.processes, strict=True):
            wait_until_serving(base, process)

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            process.wait(timeout=30)


@pytest.fixture(params=["redis", "postgres"])
def instances(request, database, tmp_path) -> Iterator[Instances]:
    """Two app processes on one database, sharing live events through Redis or through
    PostgreSQL's LISTEN/NOTIFY."""
    yield from _instances(database, tmp_path, need_redis() if request.param == "redis" else None)


@pytest.fixture
def redis_instances(database, tmp_path) -> Iterator[Instances]:
    yield from _instances(database, tmp_path, need_redis())


class RedisServer:
    """A Redis server of the test's own (Debian's redis-server), on a port of its own and
    without persistence, which a test may stop and start again."""

    def __init__(self, directory: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            if REQUIRE_ALL:
                pytest.fail("redis-server is not installed but AUFRUF_TEST_REQUIRE_ALL=1")
            pytest.skip("redis-server is not installed")
        self.command = [binary, "--port", str(free_port()), "--save", "", "--appendonly", "no"]
        self.url = f"redis://127.0.0.1:{self.command[2]}/0"
        self.directory = directory
        self.process: subprocess.Popen | None = None

    def _spawn(self) -> None:
        with (self.directory / "redis.log").open("a") as log:
            self.process = subprocess.Popen(
                self.command, cwd=self.directory, stdout=log, stderr=subprocess.STDOUT
            )

    async def start(self) -> None:
        """Start it, and return once it answers."""
        from redis.asyncio import Redis
        from redis.exceptions import ConnectionError as RedisDown

        self._spawn()
        client = Redis.from_url(self.url)
        try:
            async with asyncio.timeout(TIMEOUT):
                while True:  # polling a starting server, not timing it
                    try:
                        if await client.ping():
                            return
                    except (OSError, RedisDown):
                        await asyncio.sleep(0.05)
        finally:
            await client.aclose()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


@pytest.fixture
async def own_redis(tmp_path) -> AsyncIterator[RedisServer]:
    server = RedisServer(tmp_path)
    await server.start()
    try:
        yield server
    finally:
        server.stop()


def _instances(database, tmp_path, redis_url: str | None) -> Iterator[Instances]:
    running = Instances(database, redis_url, tmp_path)
    try:
        running.start()
        yield running
    finally:
        running.stop()


async def next_message(ws: ClientConnection, kind: str | None = None) -> dict:
    async with asyncio.timeout(TIMEOUT):
        while True:
            message = json.loads(await ws.recv())
            if message["type"] != "ping" and (kind is None or message["type"] == kind):
                return message


def display_url(base: str) -> str:
    return base.replace("http://", "ws://") + "/ws/locations/amt/display"


async def call(http: httpx.AsyncClient, base: str, office: dict) -> dict:
    auth = {"Authorization": f"Bearer {office['clerk']}"}
    drawn = await http.post(
        f"{base}/api/v1/locations/amt/tickets",
        json={"service": "pass"},
        headers={"Authorization": f"Bearer {office['kiosk']}"},
    )
    assert drawn.status_code == 201, drawn.text
    assert (await http.post(f"{base}/api/v1/counters/amt-1/open", headers=auth)).status_code == 200
    called = await http.post(f"{base}/api/v1/counters/amt-1/call-next", headers=auth)
    assert called.status_code == 200, called.text
    return called.json()


class Wall:
    """What a display shows, kept as a display page keeps it: from the snapshot and then the
    events in seq order."""

    def __init__(self, snapshot: dict) -> None:
        assert snapshot["type"] == "snapshot"
        self.seq = snapshot["seq"]
        self.called = list(snapshot["called"])
        self.waiting = snapshot["waiting"]

    def apply(self, message: dict) -> None:
        if message["type"] == "snapshot":
            self.__init__(message)
            return
        assert message["seq"] == self.seq + 1, "events arrive in seq order without gaps"
        self.seq = message["seq"]
        self.waiting = message["waiting"]
        if message["type"] in ("called", "recalled"):
            entry = {k: message[k] for k in ("number", "counter", "at")}
            self.called = [entry] + [c for c in self.called if c["number"] != entry["number"]]

    def state(self) -> dict:
        return {"seq": self.seq, "called": self.called[:8], "waiting": self.waiting}


async def follow_until(ws: ClientConnection, wall: Wall, kind: str, number: str) -> dict:
    while True:
        message = await next_message(ws)
        if message["type"] == "pong":
            continue
        wall.apply(message)
        if message["type"] == kind and message.get("number") == number:
            return message


async def test_a_call_through_instance_1_reaches_a_display_on_instance_2(instances, database):
    office = await tokens(database)
    first, second = instances.bases
    async with (
        httpx.AsyncClient(timeout=TIMEOUT, trust_env=False) as http,
        connect(display_url(second), open_timeout=TIMEOUT, proxy=None) as ws,
    ):
        wall = Wall(await next_message(ws))
        called = await call(http, first, office)
        message = await follow_until(ws, wall, "called", called["number"])
    assert message["counter"] == "Platz 1"


async def test_the_display_is_right_after_the_redis_subscription_is_killed(
    redis_instances, database
):
    from redis.asyncio import Redis

    instances = redis_instances

    office = await tokens(database)
    first, second = instances.bases
    redis = Redis.from_url(instances.env["AUFRUF_REDIS_URL"])
    try:
        async with (
            httpx.AsyncClient(timeout=TIMEOUT, trust_env=False) as http,
            connect(display_url(second), open_timeout=TIMEOUT, proxy=None) as ws,
        ):
            wall = Wall(await next_message(ws))
            called = await call(http, first, office)
            await follow_until(ws, wall, "called", called["number"])

            killed = await redis.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
            assert killed >= 1  # instance 2 subscribes for its display
            again = await call(http, first, office)  # maybe published while none listens
            await follow_until(ws, wall, "called", again["number"])

        async with connect(display_url(first), open_timeout=TIMEOUT, proxy=None) as fresh:
            truth = Wall(await next_message(fresh))
    finally:
        await redis.aclose()
    assert wall.state() == truth.state()
    assert wall.called[0]["number"] == again["number"]


async def test_the_display_is_right_after_redis_is_restarted(own_redis, database, tmp_path):
    """Redis stopped mid-stream: a call made while it is down and one made after it is back
    both reach the display on the other instance, which then shows what the database has."""
    office = await tokens(database)
    running = Instances(database, own_redis.url, tmp_path)
    try:
        running.start()
        first, second = running.bases
        async with (
            httpx.AsyncClient(timeout=TIMEOUT, trust_env=False) as http,
            connect(display_url(second), open_timeout=TIMEOUT, proxy=None) as ws,
        ):
            wall = Wall(await next_message(ws))
            called = await call(http, first, office)
            await follow_until(ws, wall, "called", called["number"])

            own_redis.stop()
            while_down = await call(http, first, office)  # committed; its publish is lost
            await own_redis.start()
            await follow_until(ws, wall, "called", while_down["number"])  # after the resync
            after = await call(http, first, office)
            await follow_until(ws, wall, "called", after["number"])

        async with connect(display_url(first), open_timeout=TIMEOUT, proxy=None) as fresh:
            truth = Wall(await next_message(fresh))
    finally:
        running.stop()
    assert wall.state() == truth.state()
    assert [c["number"] for c in wall.called[:3]] == [
        after["number"],
        while_down["number"],
        called["number"],
    ]
