"""The channels backend, chosen by the settings, and made to survive a backend that drops.

- Redis pub/sub when AUFRUF_REDIS_URL is set;
- PostgreSQL LISTEN/NOTIFY when the database is PostgreSQL and there is no Redis;
- memory otherwise (the embedded default: one process).

Pub/sub has no history, and a subscription that breaks loses what was published meanwhile.
Nothing here tries to recover those messages: the database has every event. Instead, whenever a
backend has (re)established its subscriptions after a break, it delivers RESYNC on every
subscribed channel, and the sockets then read what they missed from the database. A failed
publish is logged and dropped for the same reason (litestar's publishing task would otherwise
die and silently stop all later publishing).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncGenerator, Iterable
from typing import Any

from litestar.channels import ChannelsBackend
from litestar.channels.backends.memory import MemoryChannelsBackend
from litestar.channels.backends.redis import RedisChannelsPubSubBackend

from aufruf.settings import Settings

log = logging.getLogger("aufruf.channels")

RESYNC_TYPE = "resync"
RESYNC = json.dumps({"type": RESYNC_TYPE}).encode()

RETRY_SECONDS = (0.1, 0.5, 1.0, 2.0, 5.0)


def retry_delay(failures: int) -> float:
    return RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)]


def is_resync(message: Any) -> bool:
    return isinstance(message, dict) and message.get("type") == RESYNC_TYPE


class RedisPubSubBackend(RedisChannelsPubSubBackend):
    """litestar's Redis pub/sub backend, plus: RESYNC after redis-py re-established the
    subscription (it reconnects and resubscribes by itself), and a stream that outlives a Redis
    that is down for longer than redis-py's retries."""

    def __init__(self, url: str) -> None:
        from redis.asyncio import Redis

        super().__init__(redis=Redis.from_url(url))
        self._resyncs: asyncio.Queue[None] | None = None
        self._watched: Any = None  # the pub/sub connection our connect callback is on

    def _queue(self) -> asyncio.Queue[None]:
        if self._resyncs is None:
            self._resyncs = asyncio.Queue()
        return self._resyncs

    async def _reconnected(self, _connection: Any) -> None:
        # called by redis-py after its own callback has subscribed again
        self._queue().put_nowait(None)

    def _watch(self) -> None:
        connection = self._pub_sub.connection
        if connection is not None and connection is not self._watched:
            connection.register_connect_callback(self._reconnected)
            self._watched = connection

    async def subscribe(self, channels: Iterable[str]) -> None:
        await super().subscribe(channels)
        self._watch()

    async def publish(self, data: bytes, channels: Iterable[str]) -> None:
        try:
            await super().publish(data, channels)
        except Exception as error:  # the database has the event; clients resync
            log.warning("publishing on redis failed (%s); subscribers will resync", error)

    def _subscribed(self) -> list[str]:
        pub_sub = self._pub_sub
        names = pub_sub.channels.keys() - pub_sub.pending_unsubscribe_channels
        return [n.decode() if isinstance(n, bytes) else n for n in names]

    async def stream_events(self) -> AsyncGenerator[tuple[str, Any], None]:
        failures = 0
        broken = False
        while True:
            try:
                if broken:
                    # redis-py gave up; connect again (its callback resubscribes)
                    await self._pub_sub.connect()
                    self._watch()
                    self._queue().put_nowait(None)
                    broken = False
                while not self._queue().empty():
                    self._queue().get_nowait()
                    for channel in self._subscribed():
                        yield channel, RESYNC
                await self._has_subscribed.wait()
                message = await self._pub_sub.get_message(
                    ignore_subscribe_messages=True, timeout=self._stream_sleep_no_subscriptions
                )
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as error:  # keep the stream alive
                log.warning("redis subscription lost (%s); reconnecting", error)
                broken = True
                await asyncio.sleep(retry_delay(failures))
                failures += 1
                continue
            if message is None:
                continue
            channel = message["channel"].decode()
            if channel in self._subscribed():
                yield channel, message["data"]


class PostgresListenBackend(ChannelsBackend):
    """PostgreSQL LISTEN/NOTIFY over asyncpg: one listening connection and one publishing
    connection per process, both made again when they break (RESYNC follows a new listener).
    What this process publishes reaches its own subscribers at once, not after the NOTIFY's
    way through PostgreSQL (whose echo, known by the publishing connection's pid, is dropped):
    the instance where a clerk calls computes its views about a millisecond earlier.

    litestar's AsyncPgChannelsBackend opens a connection per publish and never notices a
    listening connection that died; this one does both right."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._channels: set[str] = set()
        self._events: asyncio.Queue[tuple[str, bytes]] | None = None
        self._listener: Any = None
        self._publisher: Any = None
        self._publisher_pid: int | None = None  # its notifications are delivered here already
        self._lock: asyncio.Lock | None = None
        self._publish_lock: asyncio.Lock | None = None
        self._repair: asyncio.Task | None = None
        self._closing = False

    @staticmethod
    def dsn_of(database_url: str) -> str:
        """asyncpg's DSN from SQLAlchemy's URL (postgresql+asyncpg://… -> postgresql://…)."""
        return "postgresql://" + database_url.split("://", 1)[1]

    async def _connect(self) -> Any:
        import asyncpg

        return await asyncpg.connect(self.dsn)

    async def on_startup(self) -> None:
        self._events = asyncio.Queue()
        self._lock = asyncio.Lock()
        self._publish_lock = asyncio.Lock()
        self._closing = False
        async with self._lock:
            await self._listen_again(resync=False)

    async def on_shutdown(self) -> None:
        self._closing = True
        if self._repair is not None:
            self._repair.cancel()
            await asyncio.gather(self._repair, return_exceptions=True)
        for connection in (self._listener, self._publisher):
            if connection is not None and not connection.is_closed():
                await connection.close()
        self._listener = self._publisher = None
        self._channels.clear()

    def _notified(self, _connection: Any, pid: int, channel: str, payload: object) -> None:
        if pid == self._publisher_pid:
            return  # published here, and given to this process's subscribers then
        if self._events is not None and isinstance(payload, str):
            self._events.put_nowait((channel, payload.encode()))

    def _terminated(self, connection: Any) -> None:
        if self._closing or connection is not self._listener:
            return
        log.warning("the LISTEN connection to PostgreSQL broke; reconnecting")
        if self._repair is None or self._repair.done():
            self._repair = asyncio.ensure_future(self._repair_listener())

    async def _listen_again(self, *, resync: bool) -> None:
        connection = await self._connect()
        connection.add_termination_listener(self._terminated)
        for channel in self._channels:
            await connection.add_listener(channel, self._notified)
        self._listener = connection
        if resync and self._events is not None:
            for channel in self._channels:
                self._events.put_nowait((channel, RESYNC))

    async def _repair_listener(self) -> None:
        failures = 0
        assert self._lock is not None
        while not self._closing:
            try:
                async with self._lock:
                    await self._listen_again(resync=True)
                return
            except Exception as error:  # PostgreSQL may be restarting
                log.warning("listening on PostgreSQL failed (%s); retrying", error)
                await asyncio.sleep(retry_delay(failures))
                failures += 1

    async def subscribe(self, channels: Iterable[str]) -> None:
        assert self._lock is not None
        async with self._lock:
            for channel in set(channels) - self._channels:
                self._channels.add(channel)
                if self._listener is not None and not self._listener.is_closed():
                    await self._listener.add_listener(channel, self._notified)

    async def unsubscribe(self, channels: Iterable[str]) -> None:
        assert self._lock is not None
        async with self._lock:
            for channel in set(channels) & self._channels:
                self._channels.discard(channel)
                if self._listener is not None and not self._listener.is_closed():
                    await self._listener.remove_listener(channel, self._notified)

    async def publish(self, data: bytes, channels: Iterable[str]) -> None:
        assert self._publish_lock is not None
        text, channels = data.decode(), list(channels)
        if self._events is not None:
            for channel in channels:
                if channel in self._channels:
                    self._events.put_nowait((channel, data))
        async with self._publish_lock:
            for attempt in range(2):
                try:
                    if self._publisher is None or self._publisher.is_closed():
                        self._publisher = await self._connect()
                        self._publisher_pid = self._publisher.get_server_pid()
                    for channel in channels:
                        await self._publisher.execute("SELECT pg_notify($1, $2)", channel, text)
                    return
                except Exception as error:  # the database has the event
                    self._publisher = None
                    if attempt == 1:
                        log.warning("NOTIFY failed (%s); subscribers will resync", error)

    async def stream_events(self) -> AsyncGenerator[tuple[str, bytes], None]:
        assert self._events is not None
        while True:
            channel, payload = await self._events.get()
            if channel in self._channels:  # an UNLISTEN may have been in transit
                yield channel, payload

    async def get_history(self, channel: str, limit: int | None = None) -> list[bytes]:
        raise NotImplementedError("LISTEN/NOTIFY keeps no history; read the database")


def channels_backend(settings: Settings) -> ChannelsBackend:
    """Redis pub/sub with AUFRUF_REDIS_URL; else LISTEN/NOTIFY on PostgreSQL; else memory."""
    if settings.redis_url:
        return RedisPubSubBackend(settings.redis_url)
    if settings.is_postgres:
        return PostgresListenBackend(PostgresListenBackend.dsn_of(settings.database_url))
    return MemoryChannelsBackend()
