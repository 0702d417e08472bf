"""Fixed-window rate limits shared by every app instance: in Redis when AUFRUF_REDIS_URL is
set, otherwise in the database (one atomic upsert per hit)."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from aufruf.booking.model import RateLimitHit
from aufruf.db import Database

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def client_address(peer: str | None, forwarded_for: str | None, trusted: Sequence[Network]) -> str:
    """The client's address: the socket peer, or, when the peer is a trusted proxy, the
    rightmost address in X-Forwarded-For that is not itself a trusted proxy."""
    address = peer or "unknown"
    if not forwarded_for or not _is_trusted(address, trusted):
        return address
    for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
        if not _is_trusted(hop, trusted):
            return hop
        address = hop
    return address


def _is_trusted(address: str, trusted: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in trusted)


class RateLimiter:
    def __init__(self, db: Database, redis_url: str | None = None) -> None:
        self.db = db
        self.redis = None
        if redis_url:
            from redis.asyncio import Redis

            self.redis = Redis.from_url(redis_url)

    async def hit(self, key: str, limit: int, now: datetime, window_seconds: int = 60) -> int:
        """Count a hit; returns 0 when allowed, else the seconds until the window ends."""
        if limit <= 0:
            return 0
        epoch = int(now.timestamp())
        window = epoch - epoch % window_seconds
        retry_after = window + window_seconds - epoch
        if self.redis is not None:
            name = f"aufruf:rl:{key}:{window}"
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.incr(name)
                pipe.expire(name, window_seconds * 2)
                hits, _ = await pipe.execute()
        else:
            hits = await self._hit_database(key, datetime.fromtimestamp(window, UTC))
        return 0 if hits <= limit else retry_after

    async def _hit_database(self, key: str, window_start: datetime) -> int:
        async with self.db.write() as session:
            insert = pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert
            stmt = insert(RateLimitHit).values(key=key, window_start=window_start, hits=1)
            stmt = stmt.on_conflict_do_update(
                index_elements=[RateLimitHit.key, RateLimitHit.window_start],
                set_={"hits": RateLimitHit.hits + 1},
            ).returning(RateLimitHit.hits)
            return (await session.execute(stmt)).scalar_one()

    async def forget_before(self, now: datetime) -> None:
        async with self.db.write() as session:
            await session.execute(
                delete(RateLimitHit).where(RateLimitHit.window_start < now - timedelta(hours=1))
            )

    async def close(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()
