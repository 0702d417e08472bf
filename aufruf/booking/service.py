"""Booking transactions: availability on demand, and appointments that claim capacity in the
database in the same transaction that creates them (ARCHITECTURE.md rule 1)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, event, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, make_transient_to_detached

from aufruf.booking import logic, postgres
from aufruf.booking.cache import (
    Availability,
    AvailabilityCache,
    Computed,
    Day,
    Key,
    Rules,
    State,
    VersionReader,
)
from aufruf.booking.logic import Claim, LocationRules, NotBookable, Usage
from aufruf.booking.model import (
    ACTIVE_STATUSES,
    Appointment,
    AppointmentClaim,
    AppointmentService,
    AvailabilityVersion,
    CapacityUsage,
    Contact,
)
from aufruf.db import Database, driver_connection
from aufruf.errors import Conflict, InvalidInput, NotFound
from aufruf.notifications.service import queue_message
from aufruf.offices import service as offices
from aufruf.settings import Settings
from aufruf.tokens import derive_token, new_nonce, token_matches, token_row_id

LANGUAGES = ("de", "en", "tr", "ru", "uk", "ar")
PENDING_HOLD_MINUTES = 30
NAME_MAX = 200
EMAIL_RE = re.compile(r"^[^@\s<>\"']+@[^@\s<>\"']+\.[^@\s<>\"'.]{2,}$")
PHONE_RE = re.compile(r"^\+?[0-9 ()/\-]{3,40}$")
TOKEN_KIND = "appointment"
NO_LIMIT = 2**31 - 1

__all__ = ["Availability", "AvailabilityCache", "Day", "VersionReader"]  # re-exported


class SlotTaken(Conflict):
    reason = "slot_taken"


class LimitReached(Conflict):
    reason = "limit_reached"


# --- availability -------------------------------------------------------------------------


async def availability(
    db: Database,
    now: datetime,
    location_id: str,
    services: Sequence[str],
    first: date | None = None,
    last: date | None = None,
    cache: AvailabilityCache | None = None,
) -> Availability:
    """Free starts for `services` (a multiset) at a location, by local day.

    With a cache, an answer costs one read of the location's availability version (shared by
    the requests waiting for one, never begun before the request arrived): it comes from the
    instance's state of the location while that state is at least as new as the version read,
    so no instance serves an answer older than the last committed change."""
    need = logic.need_of(list(services))
    if cache is None:
        state = await _load_state(db, None, location_id, now)
        return _free_from(state, location_id, now, need, first, last, {}).cut(location_id, now)
    version = await cache.reader(db, location_id).read()
    state = cache.states.get(location_id)
    if state is None or state.version < version or not state.known.current(now):
        state = await _state_at_least(db, cache, location_id, now, version)
    key = (tuple(sorted(need.items())), first, last)
    computed = cache.answer(location_id, key)
    if computed is None or computed.version != state.version or computed.today != state.known.first:
        texts = cache.texts_of(location_id, state.known.rules.zone)
        computed = _free_from(state, location_id, now, need, first, last, texts)
        cache.remember(location_id, key, computed)
    return computed.cut(location_id, now)


def _free_from(
    state: State,
    location_id: str,
    now: datetime,
    need: Mapping[str, int],
    first: date | None,
    last: date | None,
    texts: dict[datetime, str],
) -> Computed:
    """The free starts from `state`; `texts` (start -> its text in the location's zone) are
    taken from and kept in."""
    rules = state.known.rules
    _check_need(rules, location_id, need, "service")
    days = logic.bookable_days(rules, now, first, last)
    zone = rules.zone
    free = (
        # from the first day's midnight without lead time: the lead cut is made per request
        logic.free_starts(
            _without_lead(rules),
            need,
            Usage(state.used),
            logic.local_day_bounds(rules, days[0])[0],
            days[0],
            days[-1],
        )
        if days
        else {}
    )
    return Computed(
        version=state.version,
        today=now.astimezone(zone).date(),
        zone=zone,
        lead=timedelta(minutes=rules.lead_minutes),
        days=[
            Day(day, starts, _texts(starts, zone, texts)) for day, starts in sorted(free.items())
        ],
    )


def _texts(starts: list[datetime], zone: ZoneInfo, known: dict[datetime, str]) -> list[str]:
    texts = []
    for start in starts:
        text = known.get(start)
        if text is None:
            text = known[start] = start.astimezone(zone).isoformat()
        texts.append(text)
    return texts


async def _state_at_least(
    db: Database, cache: AvailabilityCache, location_id: str, now: datetime, version: int
) -> State:
    """The location's state at `version` or newer; requests that miss together share a read."""
    for _ in range(3):
        task = cache.loading.get(location_id)
        if task is None:
            task = asyncio.ensure_future(_load_state(db, cache, location_id, now))
            cache.loading[location_id] = task

            def forget(done: asyncio.Future, location_id: str = location_id) -> None:
                if cache.loading.get(location_id) is done:
                    del cache.loading[location_id]

            task.add_done_callback(forget)
        state = await asyncio.shield(task)
        if state.version >= version and state.known.current(now):
            return state
        if cache.loading.get(location_id) is task:
            del cache.loading[location_id]
    return state  # read after `version` was: at least as new


async def _load_state(
    db: Database, cache: AvailabilityCache | None, location_id: str, now: datetime
) -> State:
    """The location's rules and claimed places for today … today + horizon, in one snapshot."""
    async with db.read() as session:
        known = cache.rules.get(location_id) if cache is not None else None
        for _ in range(3):
            if known is None or not known.current(now):
                known = await _load_rules(session, location_id, now)
            start = logic.local_day_bounds(known.rules, known.first)[0]
            end = logic.local_day_bounds(known.rules, known.last)[1]
            version, rules_version, used = await _snapshot(session, location_id, start, end)
            if rules_version == known.version:
                break
            known = None  # the rules changed meanwhile
        else:
            known = await _load_rules(session, location_id, now, rules_version)
    state = State(version, known, used)
    if cache is not None:
        cache.rules[location_id] = known
        cache.settle(location_id, state)
    return state


async def _snapshot(
    session: AsyncSession, location_id: str, start: datetime, end: datetime
) -> tuple[int, int, dict]:
    """(availability version, rules version, claimed places from start to end), as of one
    snapshot (SQLite: a read transaction is one snapshot)."""
    raw = await driver_connection(session)
    if raw is not None:
        return await postgres.snapshot(raw, location_id, start, end)
    versions = (
        await session.execute(
            select(AvailabilityVersion.version, AvailabilityVersion.rules_version).where(
                AvailabilityVersion.location_id == location_id
            )
        )
    ).first()
    rows = await session.execute(
        select(
            CapacityUsage.kind, CapacityUsage.service_id, CapacityUsage.at, CapacityUsage.used
        ).where(
            CapacityUsage.location_id == location_id,
            CapacityUsage.at >= start,
            CapacityUsage.at < end,
            CapacityUsage.used > 0,
        )
    )
    used = {(kind, service, at): n for kind, service, at, n in rows}
    return (versions[0] or 0, versions[1] or 0, used) if versions else (0, 0, used)


def _without_lead(rules: LocationRules) -> LocationRules:
    # the horizon is already applied by the range of days
    return replace(rules, lead_minutes=0, horizon_days=rules.horizon_days + 1)


def _check_need(
    rules: LocationRules, location_id: str, need: Mapping[str, int], field: str
) -> None:
    if not need:
        raise InvalidInput("Choose at least one service.", field=field)
    for index, (service_id, quantity) in enumerate(need.items()):
        rule = rules.services.get(service_id)
        if rule is None:
            raise InvalidInput(
                f"The service {service_id!r} is not offered at {location_id!r}.",
                field=f"{field}[{index}]" if field == "services" else field,
            )
        if quantity > rule.max_quantity:
            raise InvalidInput(
                f"At most {rule.max_quantity} of {service_id!r} can be booked in one appointment.",
                field=field,
            )


def rules_version_reader(db: Database, location_id: str) -> VersionReader:
    """Reads of the location's rules version (see rules_version) outside any transaction,
    shared by the requests waiting for one, never begun before a request arrived."""
    return VersionReader(db, location_id, postgres.RULES_VERSION)


async def rules_version(session: AsyncSession, location_id: str) -> int:
    """The location's rules version, raised by every import of the offices (rules, hours,
    closures, services, counters): what was read from the offices under an unchanged
    version still holds."""
    raw = await driver_connection(session)
    if raw is not None:
        return await raw.fetchval(postgres.RULES_VERSION, location_id) or 0
    return await _rules_version(session, location_id)


async def _rules_version(session: AsyncSession, location_id: str) -> int:
    value = await session.scalar(
        select(AvailabilityVersion.rules_version).where(
            AvailabilityVersion.location_id == location_id
        )
    )
    return value or 0


async def _load_rules(
    session: AsyncSession, location_id: str, now: datetime, rules_version: int | None = None
) -> Rules:
    """The rules of a location for today … today + horizon, tagged with its rules version
    (read first, so the rules are at least as new as their tag)."""
    if rules_version is None:
        rules_version = await _rules_version(session, location_id)
    location = await offices.get_location(session, location_id)
    if location is None:
        raise InvalidInput(f"There is no location {location_id!r}.", field="location")
    today = now.astimezone(ZoneInfo(location.timezone)).date()
    last = today + timedelta(days=location.horizon_days)
    return Rules(
        version=rules_version,
        first=today,
        last=last,
        rules=await offices.location_rules(session, location_id, today, last),
        double_opt_in=location.double_opt_in,
    )


async def _known_rules(
    session: AsyncSession | None,
    cache: AvailabilityCache | None,
    location_id: str,
    now: datetime,
    rules_version: int,
    db: Database | None = None,
) -> Rules:
    """The rules of a location, from the cache while its rules version is `rules_version`;
    else read in `session` (without one, in a read session of `db` opened for it)."""
    cached = cache.rules.get(location_id) if cache is not None else None
    if cached is not None and cached.version == rules_version and cached.current(now):
        return cached
    if session is None:
        assert db is not None
        async with db.read() as reading:
            known = await _load_rules(reading, location_id, now, rules_version)
    else:
        known = await _load_rules(session, location_id, now, rules_version)
    if cache is not None:
        cache.rules[location_id] = known
    return known


async def bump_versions(
    session: AsyncSession, location_ids: Iterable[str], *, rules: bool = False
) -> dict[str, int]:
    """Mark the availability (and with `rules`, the booking rules) of these locations as
    changed; their new availability versions. Call it last in a transaction: it locks the
    locations' version rows to commit."""
    insert = _insert(session)
    versions = {}
    for location_id in sorted(set(location_ids)):
        stmt = insert(AvailabilityVersion).values(
            location_id=location_id, version=1, rules_version=1
        )
        changes = {"version": AvailabilityVersion.version + 1}
        if rules:
            changes["rules_version"] = AvailabilityVersion.rules_version + 1
        versions[location_id] = (
            await session.execute(
                stmt.on_conflict_do_update(
                    index_elements=[AvailabilityVersion.location_id], set_=changes
                ).returning(AvailabilityVersion.version)
            )
        ).scalar_one()
    return versions


# --- claiming and releasing capacity ------------------------------------------------------


def _insert(session: AsyncSession):  # returns the dialect's insert construct
    return pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert


async def _apply_claims(
    session: AsyncSession,
    location_id: str,
    add: Sequence[Claim],
    remove: Sequence[AppointmentClaim],
) -> None:
    """Take `add` and give back `remove`, one row at a time in key order (the same order in
    every transaction, so concurrent bookings wait for each other instead of deadlocking).
    A place is taken with `used = used + n WHERE used + n <= capacity`; if any row has no
    room, SlotTaken is raised and the caller's transaction rolls back."""
    delta: dict[tuple[str, str, datetime], tuple[int, int]] = {}
    for claim in add:
        n, _ = delta.get(claim.key, (0, claim.capacity))
        delta[claim.key] = (n + claim.n, claim.capacity)
    for held in remove:
        key = (held.kind, held.service_id, held.at)
        n, capacity = delta.get(key, (0, 0))
        delta[key] = (n - held.n, capacity)
    insert = _insert(session)
    for (kind, service_id, at), (n, capacity) in sorted(delta.items()):
        if n < 0:
            await session.execute(
                update(CapacityUsage)
                .where(
                    CapacityUsage.location_id == location_id,
                    CapacityUsage.kind == kind,
                    CapacityUsage.service_id == service_id,
                    CapacityUsage.at == at,
                )
                .values(used=CapacityUsage.used + n)
            )
            continue
        if n == 0:
            continue
        if n > capacity:
            raise SlotTaken("This time is no longer available.")
        stmt = insert(CapacityUsage).values(
            location_id=location_id,
            kind=kind,
            service_id=service_id,
            at=at,
            used=n,
            capacity=capacity,
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[
                CapacityUsage.location_id,
                CapacityUsage.kind,
                CapacityUsage.service_id,
                CapacityUsage.at,
            ],
            set_={
                "used": CapacityUsage.used + stmt.excluded.used,
                "capacity": stmt.excluded.capacity,
            },
            where=CapacityUsage.used + stmt.excluded.used <= stmt.excluded.capacity,
        ).returning(CapacityUsage.used)
        if (await session.execute(stmt)).first() is None:
            raise SlotTaken("This time is no longer available.")


def _merged(claims: Sequence[Claim]) -> list[tuple[Key, int, int]]:
    """A booking's claims as rows (key, n, capacity) in key order: the order every booking
    takes its rows in, so concurrent bookings wait for each other instead of deadlocking.
    SlotTaken when one alone exceeds its capacity."""
    merged: dict[Key, list[int]] = {}
    for claim in claims:
        n, capacity = merged.get(claim.key, (0, claim.capacity))
        merged[claim.key] = [n + claim.n, capacity]
    if any(n > capacity for n, capacity in merged.values()):
        raise SlotTaken("This time is no longer available.")
    return [(key, n, capacity) for key, (n, capacity) in sorted(merged.items())]


async def _claim(session: AsyncSession, location_id: str, rows: Sequence[tuple[Key, int, int]]):
    """Take the places of a new booking in one statement, each row only where
    `used + n <= capacity`; if any row has no room, SlotTaken rolls the transaction back."""
    values = [
        {"location_id": location_id, "kind": k, "service_id": s, "at": at, "used": n, "capacity": c}
        for (k, s, at), n, c in rows
    ]
    stmt = _insert(session)(CapacityUsage).values(values)
    stmt = stmt.on_conflict_do_update(
        index_elements=[
            CapacityUsage.location_id,
            CapacityUsage.kind,
            CapacityUsage.service_id,
            CapacityUsage.at,
        ],
        set_={"used": CapacityUsage.used + stmt.excluded.used, "capacity": stmt.excluded.capacity},
        where=CapacityUsage.used + stmt.excluded.used <= stmt.excluded.capacity,
    ).returning(CapacityUsage.used)
    if len((await session.execute(stmt)).all()) != len(values):
        raise SlotTaken("This time is no longer available.")


async def _held_claims(session: AsyncSession, appointment_id: int) -> list[AppointmentClaim]:
    return list(
        await session.scalars(
            select(AppointmentClaim).where(AppointmentClaim.appointment_id == appointment_id)
        )
    )


async def _release(session: AsyncSession, appointment: Appointment) -> None:
    held = await _held_claims(session, appointment.id)
    await _apply_claims(session, appointment.location_id, [], held)
    await session.execute(
        delete(AppointmentClaim).where(AppointmentClaim.appointment_id == appointment.id)
    )
    appointment.release_at = None


def _claim_rows(appointment_id: int, claims: Sequence[Claim]) -> list[AppointmentClaim]:
    merged: dict[tuple[str, str, datetime], int] = {}
    for c in claims:
        merged[c.key] = merged.get(c.key, 0) + c.n
    return [
        AppointmentClaim(appointment_id=appointment_id, kind=k, service_id=s, at=at, n=n)
        for (k, s, at), n in merged.items()
    ]


# --- appointments -------------------------------------------------------------------------


@dataclass(frozen=True)
class BookingRequest:
    location: str
    services: list[str]
    start: datetime
    name: str
    email: str | None
    phone: str | None = None
    language: str = "de"
    by_staff: bool = False
    pending: bool = False  # e.g. no valid proof of work: confirm by e-mail first


@dataclass(frozen=True)
class Booked:
    appointment: Appointment
    services: dict[str, int]
    token: str
    timezone: str


def appointment_token(secret: str, appointment: Appointment) -> str:
    return derive_token(secret, TOKEN_KIND, appointment.id, appointment.nonce)


def _validate_person(request: BookingRequest) -> tuple[str, str | None, str | None]:
    name = " ".join(request.name.split())
    if not name:
        raise InvalidInput("Please enter your name.", field="name")
    if len(name) > NAME_MAX:
        raise InvalidInput(f"The name may have at most {NAME_MAX} characters.", field="name")
    email = (request.email or "").strip() or None
    if email is None and not request.by_staff:
        raise InvalidInput("Please enter your e-mail address.", field="email")
    if email is not None and (len(email) > 254 or not EMAIL_RE.match(email)):
        raise InvalidInput("This is not a valid e-mail address.", field="email")
    phone = (request.phone or "").strip() or None
    if phone is not None and not PHONE_RE.match(phone):
        raise InvalidInput("This is not a valid phone number.", field="phone")
    if request.language not in LANGUAGES:
        raise InvalidInput(f"The language must be one of {', '.join(LANGUAGES)}.", field="language")
    return name, email, phone


def _limit_reached(limit: int) -> LimitReached:
    return LimitReached(
        f"This e-mail address already has {limit} upcoming appointments. "
        "Please cancel one before booking another."
    )


async def _check_email_limit(
    session: AsyncSession, email_key: str, now: datetime, limit: int
) -> None:
    if session.bind.dialect.name == "postgresql":
        # serialise bookings of one address, so two at once cannot both pass the count
        key = postgres.email_lock_key(email_key)
        await session.execute(select(func.pg_advisory_xact_lock(key)))
    active = await session.scalar(
        select(func.count())
        .select_from(Appointment)
        .join(Contact, Contact.appointment_id == Appointment.id)
        .where(
            Contact.email_key == email_key,
            Appointment.status.in_(("pending", "confirmed")),
            Appointment.end_at > now,
        )
    )
    if (active or 0) >= limit:
        raise _limit_reached(limit)


async def book_at_once(
    db: Database,
    settings: Settings,
    now: datetime,
    request: BookingRequest,
    cache: AvailabilityCache | None = None,
) -> Booked:
    """book() with the settings' limits, in a transaction of its own, committed when this
    returns. On PostgreSQL it is the booking's own connection (Database.own_transaction),
    which book() commits as it raises the version: that row is locked for the commit alone,
    however busy the app is."""
    options: dict[str, Any] = dict(
        max_per_email=settings.max_active_appointments_per_email,
        retention_days=settings.retention_days,
        cache=cache,
    )
    if db.is_sqlite:
        async with db.write() as session:
            return await book(session, settings.secret_key, now, request, **options)
    async with db.own_transaction() as own:
        return await book(None, settings.secret_key, now, request, own=own, db=db, **options)


class _RulesChanged(Exception):
    """The booking statement found another rules version than the cached one it was made
    with: nothing was claimed."""

    def __init__(self, version: int) -> None:
        self.version = version


async def book(
    session: AsyncSession | None,
    secret: str,
    now: datetime,
    request: BookingRequest,
    *,
    max_per_email: int = 3,
    retention_days: int = 7,
    cache: AvailabilityCache | None = None,
    own: Any | None = None,
    db: Database | None = None,
) -> Booked:
    """Create an appointment and claim its places, in the caller's transaction; or, with
    `own` (PostgreSQL: a plain connection of the caller's own, Database.own_transaction), in
    a transaction begun here, which it commits as it raises the version (then `session` is
    None, and rules the cache lacks are read in a read session of `db`).

    On PostgreSQL it is a few statements on the session's connection (the address's lock with
    the rules version; the address's count, the claims and the appointment with all it holds
    in one; the outbox message; the raised version, last); the portable path says the same
    with the ORM. With `own` it is four round trips: BEGIN with the address's lock; the
    booking statement, which also checks that the rules the instance cached still hold; the
    raised version with the COMMIT; the raised version read back.
    With `cache`, the instance's availability takes the claims in once they are committed."""
    options: dict[str, Any] = dict(
        max_per_email=max_per_email, retention_days=retention_days, cache=cache, own=own, db=db
    )
    try:
        return await _book(session, secret, now, request, None, **options)
    except _RulesChanged as changed:  # nothing claimed: again, with the rules read afresh
        return await _book(session, secret, now, request, changed.version, **options)


async def _book(
    session: AsyncSession | None,
    secret: str,
    now: datetime,
    request: BookingRequest,
    rules_version: int | None,
    *,
    max_per_email: int,
    retention_days: int,
    cache: AvailabilityCache | None,
    own: Any | None,
    db: Database | None,
) -> Booked:
    """book(); `rules_version` is given when a first try found the cached rules outdated (in
    the transaction it began: the second try checks no cached rules)."""
    name, email, phone = _validate_person(request)
    need = logic.need_of(request.services)
    start = request.start
    if start.tzinfo is None:
        raise InvalidInput(
            "The start needs a time zone offset, e.g. 2026-11-24T09:00:00+01:00.", field="start"
        )
    location_id = request.location
    email_key = email.lower() if email is not None and not request.by_staff else None
    if own is None and session is None:
        raise TypeError("book needs a session or its own transaction")
    checked = None  # the cached rules version the booking statement checks (with `own`)
    if own is not None:
        raw = own
        if rules_version is None:  # the first try: the transaction begins here
            await own.execute(postgres.begin_and_lock(email_key))
            cached = cache.rules.get(location_id) if cache is not None else None
            if cached is not None and cached.current(now):
                rules_version = checked = cached.version
            else:
                rules_version = await own.fetchval(postgres.RULES_VERSION, location_id) or 0
    elif (raw := await driver_connection(session)) is not None:
        rules_version = await postgres.lock_email_and_read_rules_version(
            raw, location_id, email_key
        )
    else:
        rules_version = await _rules_version(session, location_id)
    known = await _known_rules(session, cache, location_id, now, rules_version, db)
    rules = known.rules
    _check_need(rules, location_id, need, "services")
    try:
        claims = logic.check_start(rules, need, start, now)
    except NotBookable as exc:
        raise InvalidInput(str(exc), field="start", reason=exc.reason) from None
    rows = _merged(claims)
    length = timedelta(minutes=logic.appointment_minutes(rules, need))
    # a staff booking (on the phone) is confirmed by the clerk, not by an e-mail link
    pending = request.pending or (known.double_opt_in and not request.by_staff)
    appointment = Appointment(
        location_id=location_id,
        start_at=start.astimezone(now.tzinfo),
        end_at=(start + length).astimezone(now.tzinfo),
        status="pending" if pending else "confirmed",
        nonce=new_nonce(),
        language=request.language,
        sequence=0,
        created_at=now,
        confirmed_at=None if pending else now,
        pending_until=now + timedelta(minutes=PENDING_HOLD_MINUTES) if pending else None,
        cancelled_at=None,
        cancelled_by=None,
        cancel_reason=None,
        release_at=None,
        booked_by="staff" if request.by_staff else "citizen",
    )
    contact = {
        "name": name,
        "email": email,
        "email_key": email.lower() if email else None,
        "phone": phone,
        "delete_after": appointment.end_at + timedelta(days=retention_days),
    }
    kind = "booking_pending" if pending else "booking_confirmed"
    message = kind if email is not None else None
    if raw is not None:
        limit = max_per_email if email_key is not None else NO_LIMIT
        appointment.code = logic.new_code()
        values = _values(appointment)
        active, claimed, appointment_id, found = await postgres.book(
            raw, rows, email_key, now, limit, values, need, contact, message, rules_version=checked
        )
        if checked is not None and found != checked:
            raise _RulesChanged(found)
        if active >= limit:
            raise _limit_reached(limit)
        if claimed != len(rows):
            raise SlotTaken("This time is no longer available.")
        for _ in range(8):  # while the code is taken: the claims stand, try other codes
            if appointment_id is not None:
                break
            appointment.code = values["code"] = logic.new_code()
            _, _, appointment_id, _ = await postgres.book(
                raw, rows, email_key, now, limit, values, need, contact, message, held=True
            )
        if appointment_id is None:
            raise RuntimeError("could not find a free booking code")
        appointment.id = appointment_id
        make_transient_to_detached(appointment)
        if own is None:
            session.add(appointment)
    else:
        if email_key is not None:
            await _check_email_limit(session, email_key, now, max_per_email)
        await _claim(session, location_id, rows)
        await _insert_with_code(session, appointment)
        session.add_all(
            [
                AppointmentService(appointment_id=appointment.id, service_id=s, quantity=q)
                for s, q in need.items()
            ]
        )
        session.add_all(_claim_rows(appointment.id, claims))
        session.add(Contact(appointment_id=appointment.id, **contact))
    # the version last: its row, every booking's of the location, is locked only for the commit
    if own is not None:
        version = await postgres.raise_version_and_commit(own)
    elif raw is not None:
        version = await postgres.raise_version(raw, location_id)
    else:
        if email is not None:
            queue_message(session, kind, appointment.id, appointment.language, now)
        version = (await bump_versions(session, [location_id]))[location_id]
    claimed_rows = [(key, n) for key, n, _ in rows]
    if cache is not None and own is not None:  # committed already
        cache.committed(location_id, version, claimed_rows)
    elif cache is not None and not session.in_nested_transaction():
        session.sync_session.info.setdefault(_COMMITTED, []).append(
            (cache, location_id, version, claimed_rows)
        )
    return Booked(appointment, need, appointment_token(secret, appointment), rules.timezone)


def _values(appointment: Appointment) -> dict:
    return {
        name: getattr(appointment, name)
        for name in (
            "location_id", "start_at", "end_at", "status", "code", "nonce", "language",
            "created_at", "confirmed_at", "pending_until", "booked_by",
        )
    }  # fmt: skip


async def _insert_with_code(
    session: AsyncSession, appointment: Appointment, tries: int = 8
) -> None:
    """Insert with a fresh code, unique among active appointments (a unique partial index)."""
    for _ in range(tries):
        appointment.code = logic.new_code()
        try:
            async with session.begin_nested():
                session.add(appointment)
                await session.flush()
            return
        except IntegrityError:
            continue
    raise RuntimeError("could not find a free booking code")


_COMMITTED = "aufruf.booking.committed"  # session.info: bookings to tell the cache at commit


@event.listens_for(Session, "after_commit")
def _tell_cache(session: Session) -> None:
    for cache, location_id, version, claims in session.info.pop(_COMMITTED, ()):
        cache.committed(location_id, version, claims)


@event.listens_for(Session, "after_rollback")
def _forget_bookings(session: Session) -> None:
    session.info.pop(_COMMITTED, None)


async def by_token(
    session: AsyncSession, secret: str, token: str, *, for_update: bool = False
) -> Appointment:
    row_id = token_row_id(token)
    stmt = select(Appointment).where(Appointment.id == row_id)
    if for_update:
        stmt = stmt.with_for_update()
    appointment = await session.scalar(stmt) if row_id is not None else None
    if appointment is None or not token_matches(
        secret, TOKEN_KIND, appointment.id, appointment.nonce, token
    ):
        raise NotFound("There is no appointment for this link.")
    return appointment


async def services_of(session: AsyncSession, appointment_id: int) -> dict[str, int]:
    rows = await session.execute(
        select(AppointmentService.service_id, AppointmentService.quantity).where(
            AppointmentService.appointment_id == appointment_id
        )
    )
    return dict(rows.all())


async def cancel(
    session: AsyncSession,
    appointment: Appointment,
    now: datetime,
    *,
    by: str = "citizen",
    reason: str | None = None,
    holdback_minutes: int = 0,
) -> bool:
    """Cancel a pending or confirmed appointment and free its time (at once, or after the
    location's hold-back). Cancelling a cancelled appointment changes nothing (False)."""
    if appointment.status == "cancelled":
        return False
    if appointment.status not in ("pending", "confirmed"):
        raise Conflict(
            f"An appointment that is {appointment.status.replace('_', ' ')} cannot be cancelled.",
            reason="already_checked_in"
            if appointment.status == "checked_in"
            else "not_cancellable",
        )
    appointment.status = "cancelled"
    appointment.cancelled_at = now
    appointment.cancelled_by = by
    appointment.cancel_reason = reason
    appointment.sequence += 1
    if holdback_minutes > 0 and by == "citizen":
        appointment.release_at = now + timedelta(minutes=holdback_minutes)
    else:
        await _release(session, appointment)
    kind = "cancelled_by_office" if by == "office" else "booking_cancelled"
    queue_message(
        session, kind, appointment.id, appointment.language, now, {"reason": reason or ""}
    )
    await bump_versions(session, [appointment.location_id])
    return True


async def cancel_by_citizen(session: AsyncSession, appointment: Appointment, now: datetime) -> bool:
    """The citizen cancels: the time is free again at once, or after the location's hold-back."""
    location = await offices.get_location(session, appointment.location_id)
    holdback = location.cancel_holdback_minutes if location is not None else 0
    return await cancel(session, appointment, now, by="citizen", holdback_minutes=holdback)


async def reschedule(
    session: AsyncSession, appointment: Appointment, start: datetime, now: datetime
) -> None:
    """Move an appointment to `start`; its old places are given back and the new ones taken in
    one transaction, so if the new time is taken the old one is kept."""
    if appointment.status not in ("pending", "confirmed"):
        raise Conflict(
            f"An appointment that is {appointment.status.replace('_', ' ')} cannot be moved.",
            reason="cancelled" if appointment.status == "cancelled" else "not_movable",
        )
    if start.tzinfo is None:
        raise InvalidInput("The start needs a time zone offset.", field="start")
    need = await services_of(session, appointment.id)
    location = await offices.get_location(session, appointment.location_id)
    if location is None:
        raise Conflict("This location no longer takes appointments.", reason="closed")
    day = start.astimezone(ZoneInfo(location.timezone)).date()
    rules = await offices.location_rules(session, appointment.location_id, day, day)
    try:
        claims = logic.check_start(rules, need, start, now)
    except NotBookable as exc:
        raise InvalidInput(str(exc), field="start", reason=exc.reason) from None
    held = await _held_claims(session, appointment.id)
    await _apply_claims(session, appointment.location_id, claims, held)
    await session.execute(
        delete(AppointmentClaim).where(AppointmentClaim.appointment_id == appointment.id)
    )
    session.add_all(_claim_rows(appointment.id, claims))
    length = timedelta(minutes=logic.appointment_minutes(rules, need))
    appointment.start_at = start.astimezone(now.tzinfo)
    appointment.end_at = (start + length).astimezone(now.tzinfo)
    appointment.sequence += 1
    await session.execute(
        update(Contact)
        .where(Contact.appointment_id == appointment.id)
        .values(delete_after=appointment.end_at + (await _retention(session, appointment)))
    )
    queue_message(session, "booking_rescheduled", appointment.id, appointment.language, now)
    await bump_versions(session, [appointment.location_id])


async def _retention(session: AsyncSession, appointment: Appointment) -> timedelta:
    contact = await session.get(Contact, appointment.id)
    if contact is None:
        return timedelta(days=7)
    return contact.delete_after - appointment.end_at


async def confirm(session: AsyncSession, appointment: Appointment, now: datetime) -> None:
    """Confirm a pending appointment (double opt-in) while it still holds its time."""
    if appointment.status == "confirmed":
        return
    if appointment.status != "pending":
        raise Conflict(
            f"An appointment that is {appointment.status.replace('_', ' ')} cannot be confirmed.",
            reason="cancelled" if appointment.status in ("cancelled", "expired") else "not_pending",
        )
    if appointment.pending_until is not None and appointment.pending_until <= now:
        await expire(session, appointment)
        raise Conflict(
            "The time was held for you, but the link came too late. Please book again.",
            reason="expired",
        )
    appointment.status = "confirmed"
    appointment.confirmed_at = now
    appointment.pending_until = None
    queue_message(session, "booking_confirmed", appointment.id, appointment.language, now)


async def expire(session: AsyncSession, appointment: Appointment) -> None:
    appointment.status = "expired"
    await _release(session, appointment)
    await bump_versions(session, [appointment.location_id])


async def cancel_for_closure(
    session: AsyncSession,
    location_id: str,
    first_day: date,
    last_day: date,
    reason: dict[str, str],
    now: datetime,
) -> int:
    """Cancel the active appointments of a location on a closed range of local days, with
    the reason in each citizen's language and a notice queued to each. Returns how many."""
    location = await offices.get_location(session, location_id)
    if location is None:
        return 0
    zone = ZoneInfo(location.timezone)
    start = datetime.combine(first_day, datetime.min.time(), tzinfo=zone)
    end = datetime.combine(last_day + timedelta(days=1), datetime.min.time(), tzinfo=zone)
    affected = list(
        await session.scalars(
            select(Appointment)
            .where(
                Appointment.location_id == location_id,
                Appointment.status.in_(("pending", "confirmed")),
                Appointment.start_at >= start,
                Appointment.start_at < end,
                Appointment.start_at > now,
            )
            .order_by(Appointment.id)
        )
    )
    for appointment in affected:
        text = (
            reason.get(appointment.language) or reason.get("de") or next(iter(reason.values()), "")
        )
        await cancel(session, appointment, now, by="office", reason=text or "closure")
    return len(affected)


async def release_due(session: AsyncSession, now: datetime) -> int:
    """Free what is due: capacity held back after cancellations, and pending bookings whose
    confirmation did not come in time. Returns how many appointments were touched."""
    held = list(
        await session.scalars(
            select(Appointment).where(Appointment.release_at <= now).order_by(Appointment.id)
        )
    )
    for appointment in held:
        await _release(session, appointment)
    if held:
        await bump_versions(session, [a.location_id for a in held])
    expired = list(
        await session.scalars(
            select(Appointment)
            .where(Appointment.status == "pending", Appointment.pending_until <= now)
            .order_by(Appointment.id)
        )
    )
    for appointment in expired:
        await expire(session, appointment)
    return len(held) + len(expired)


async def purge(session: AsyncSession, now: datetime) -> int:
    """Delete the contact data whose retention has run out. Returns how many were deleted."""
    result = await session.execute(delete(Contact).where(Contact.delete_after <= now))
    return result.rowcount or 0


@dataclass(frozen=True)
class DayEntry:
    id: int
    code: str
    start: datetime
    end: datetime
    services: list[str]  # a service booked twice is named twice
    status: str


async def appointments_on(
    session: AsyncSession, location_id: str, day: date, zone: ZoneInfo
) -> list[DayEntry]:
    """A location's appointments starting on a local day, by start; no personal data."""
    first = datetime.combine(day, datetime.min.time(), tzinfo=zone)
    after = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=zone)
    rows = list(
        await session.scalars(
            select(Appointment)
            .where(
                Appointment.location_id == location_id,
                Appointment.start_at >= first,
                Appointment.start_at < after,
            )
            .order_by(Appointment.start_at, Appointment.id)
        )
    )
    services: dict[int, list[str]] = {a.id: [] for a in rows}
    if services:
        needs = await session.execute(
            select(
                AppointmentService.appointment_id,
                AppointmentService.service_id,
                AppointmentService.quantity,
            )
            .where(AppointmentService.appointment_id.in_(list(services)))
            .order_by(AppointmentService.service_id)
        )
        for appointment_id, service_id, quantity in needs:
            services[appointment_id].extend([service_id] * quantity)
    return [DayEntry(a.id, a.code, a.start_at, a.end_at, services[a.id], a.status) for a in rows]


async def get_appointment(session: AsyncSession, appointment_id: int) -> Appointment | None:
    return await session.get(Appointment, appointment_id)


async def contact_of(session: AsyncSession, appointment_id: int) -> Contact | None:
    """The citizen's contact data, None once purged (or for a booking without any)."""
    return await session.get(Contact, appointment_id)


@dataclass(frozen=True)
class Upcoming:
    id: int
    sequence: int
    start_at: datetime
    created_at: datetime
    language: str
    location_id: str


async def upcoming_with_email(
    session: AsyncSession, now: datetime, until: datetime
) -> list[Upcoming]:
    """Confirmed appointments starting after now and up to `until` whose citizen gave an
    e-mail address (for reminders)."""
    rows = await session.execute(
        select(
            Appointment.id,
            Appointment.sequence,
            Appointment.start_at,
            Appointment.created_at,
            Appointment.language,
            Appointment.location_id,
        )
        .join(Contact, Contact.appointment_id == Appointment.id)
        .where(
            Appointment.status == "confirmed",
            Appointment.start_at > now,
            Appointment.start_at <= until,
            Contact.email.is_not(None),
        )
        .order_by(Appointment.id)
    )
    return [Upcoming(*row) for row in rows]


def is_active(appointment: Appointment) -> bool:
    return appointment.status in ACTIVE_STATUSES
