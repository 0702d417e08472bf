"""What one app instance knows of availability: per location its booking rules and claimed
places at one availability version, and the answers computed from them.

The availability version is raised by every change of a location's bookings or rules, in
that change's transaction and last, so versions are in commit order. A state at version v is
exact for v: read in one snapshot, or brought there from an exact state by the claims of
the bookings this instance committed (each known with the version it raised). Any other
change, on this instance or another, leaves a gap in those versions and the state is read
again. Answers carry the version they hold for; a booking keeps the answers of the days it
does not touch."""

from __future__ import annotations

import asyncio
from bisect import bisect_left
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from aufruf.booking.logic import LocationRules

if TYPE_CHECKING:
    from aufruf.db import Database

Key = tuple[str, str, datetime]  # (kind, service, at) of a capacity row


@dataclass(frozen=True)
class Day:
    """One local day's free starts, as instants and as the texts clients get."""

    date: date
    starts: list[datetime]
    texts: list[str]


@dataclass(frozen=True)
class Availability:
    location: str
    days: list[Day]


@dataclass(frozen=True)
class Computed:
    version: int
    today: date
    zone: ZoneInfo
    lead: timedelta
    days: list[Day]

    def cut(self, location_id: str, now: datetime) -> Availability:
        """The starts not earlier than now + the lead time."""
        earliest = now + self.lead
        days = []
        for day in self.days:
            i = bisect_left(day.starts, earliest)
            days.append(day if i == 0 else Day(day.date, day.starts[i:], day.texts[i:]))
        return Availability(location_id, days)


@dataclass(frozen=True)
class Rules:
    """A location's booking rules for today … today + horizon, as of a rules version."""

    version: int
    first: date
    last: date
    rules: LocationRules
    double_opt_in: bool

    def current(self, now: datetime) -> bool:
        return self.first == now.astimezone(self.rules.zone).date()


@dataclass
class State:
    """A location at one availability version: its rules and claimed places (key -> used)."""

    version: int
    known: Rules
    used: dict[Key, int]


class AvailabilityCache:
    """Rules, states and answers of the locations this instance was asked about."""

    limit = 4096  # answers per location
    pending_limit = 1024  # committed bookings waiting for the versions before them
    texts_limit = 65536  # texts of starts per location

    def __init__(self) -> None:
        self.rules: dict[str, Rules] = {}
        self.states: dict[str, State] = {}
        self.answers: dict[str, dict[tuple, Computed]] = {}
        self.loading: dict[str, asyncio.Future[State]] = {}
        self.readers: dict[str, VersionReader] = {}
        self.pending: dict[str, dict[int, list[tuple[Key, int]]]] = {}
        # per location and zone: the text of each start given out (recomputing a day after a
        # booking would otherwise format all its starts again)
        self.texts: dict[str, tuple[ZoneInfo, dict[datetime, str]]] = {}

    def reader(self, db: Database, location_id: str) -> VersionReader:
        reader = self.readers.get(location_id)
        if reader is None:
            reader = self.readers[location_id] = VersionReader(db, location_id)
        return reader

    def texts_of(self, location_id: str, zone: ZoneInfo) -> dict[datetime, str]:
        """The known texts of starts at a location, in its zone `zone`."""
        kept = self.texts.get(location_id)
        if kept is None or kept[0] != zone or len(kept[1]) > self.texts_limit:
            kept = self.texts[location_id] = (zone, {})
        return kept[1]

    def answer(self, location_id: str, key: tuple) -> Computed | None:
        return self.answers.get(location_id, {}).get(key)

    def remember(self, location_id: str, key: tuple, computed: Computed) -> None:
        answers = self.answers.setdefault(location_id, {})
        if len(answers) >= self.limit:
            answers.clear()
        answers[key] = computed

    def settle(self, location_id: str, state: State) -> None:
        """Keep a state read from the database, unless a newer one is kept already."""
        kept = self.states.get(location_id)
        if kept is None or kept.version <= state.version or kept.known.first < state.known.first:
            self.states[location_id] = state
        self._advance(location_id)

    def committed(self, location_id: str, version: int, claims: list[tuple[Key, int]]) -> None:
        """A booking this instance committed: it raised the version to `version` and claimed
        `claims` ((key, n), n places each)."""
        if location_id not in self.states:
            return
        pending = self.pending.setdefault(location_id, {})
        if len(pending) >= self.pending_limit:
            pending.clear()
        pending[version] = claims
        self._advance(location_id)

    def _advance(self, location_id: str) -> None:
        state, pending = self.states.get(location_id), self.pending.get(location_id)
        if state is None or not pending:
            return
        for version in [v for v in pending if v <= state.version]:
            del pending[version]
        while (claims := pending.pop(state.version + 1, None)) is not None:
            zone = state.known.rules.zone
            touched = set()
            for key, n in claims:
                state.used[key] = state.used.get(key, 0) + n
                touched.add(key[2].astimezone(zone).date())
            before, state.version = state.version, state.version + 1
            answers = self.answers.get(location_id, {})
            for key, computed in list(answers.items()):
                if computed.version == before and not any(d.date in touched for d in computed.days):
                    answers[key] = replace(computed, version=state.version)


_VERSION = "SELECT version FROM availability_version WHERE location_id = $1"


class VersionReader:
    """Reads of one location's availability version, shared by the requests waiting for one.

    A request never uses a read that began before it arrived (that read could miss a change
    committed just before): requests arriving while a read is under way share the next read,
    which begins when that one ends. So at most two reads per location are under way, however
    many requests there are."""

    def __init__(self, db: Database, location_id: str, sql: str = _VERSION) -> None:
        self.db = db
        self.location_id = location_id
        self.sql = sql
        self.running: asyncio.Future[int] | None = None
        self.queued: asyncio.Future[int] | None = None

    async def read(self) -> int:
        if self.running is None:
            self.running = asyncio.ensure_future(self._read())
            return await asyncio.shield(self.running)
        if self.queued is None:
            self.queued = asyncio.ensure_future(self._after(self.running))
        return await asyncio.shield(self.queued)

    async def _after(self, previous: asyncio.Future[int]) -> int:
        await asyncio.wait([previous])
        self.running, self.queued = self.queued, None
        return await self._read()

    async def _read(self) -> int:
        me = asyncio.current_task()
        try:
            return await self.db.peek(self.sql, self.location_id) or 0
        finally:
            if self.running is not None and self.running is me:
                self.running = None
