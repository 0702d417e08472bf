"""Accounts, sessions, tokens and sign-in throttling in the database.

Sign-in counts each attempt before the password is checked (one atomic upsert per counter),
so parallel guesses cannot slip past the limits; a success takes its own attempt back.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, delete, literal, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from aufruf.auth import passwords
from aufruf.auth.logic import (
    LIMITS,
    Actor,
    Limits,
    Window,
    digest,
    normal_username,
    password_problem,
    throttle_wait,
    username_problem,
)
from aufruf.auth.model import (
    TOKEN_ROLES,
    USER_ROLES,
    ApiToken,
    KnownAddress,
    LoginFailures,
    StaffSession,
    StaffUser,
    StaffUserLocation,
)
from aufruf.db import Database, UTCDateTime
from aufruf.errors import InvalidInput, NotFound
from aufruf.offices.model import Counter, Kiosk, Location, Printer

log = logging.getLogger("aufruf.auth")

SESSION_IDLE = timedelta(hours=12)
SESSION_MAX = timedelta(hours=24)
SESSION_REFRESH = timedelta(minutes=5)  # a session's expiry is moved on at most this often
TOKEN_TOUCH = timedelta(minutes=1)  # last_used_at is written at most this often
KNOWN_ADDRESS_DAYS = 60
PREFIX_LENGTH = 6


def new_secret() -> str:
    """A random token or session cookie: 256 bits, base64url (43 characters)."""
    return secrets.token_urlsafe(32)


# --- accounts --------------------------------------------------------------------------------


async def _require_locations(session: AsyncSession, location_ids: list[str]) -> None:
    for location_id in location_ids:
        if await session.get(Location, location_id) is None:
            raise InvalidInput(
                f"There is no location with the id {location_id!r}.", field="location"
            )


async def create_user(
    session: AsyncSession,
    now: datetime,
    username: str,
    password: str,
    role: str,
    locations: list[str],
) -> StaffUser:
    """A new staff account; InvalidInput names what is wrong and nothing is written."""
    username = normal_username(username)
    if problem := username_problem(username):
        raise InvalidInput(problem, field="username")
    if role not in USER_ROLES:
        raise InvalidInput(f"The role must be one of {', '.join(USER_ROLES)}.", field="role")
    if role != "admin" and not locations:
        raise InvalidInput(f"A {role} needs at least one --location.", field="location")
    if problem := password_problem(password):
        raise InvalidInput(problem, field="password")
    await _require_locations(session, locations)
    taken = await session.scalar(select(StaffUser.id).where(StaffUser.username == username))
    if taken is not None:
        raise InvalidInput(f"The user {username!r} exists already.", field="username")
    user = StaffUser(
        username=username,
        password_hash=passwords.hash_password(password),
        role=role,
        active=True,
        created_at=now,
    )
    session.add(user)
    await session.flush()
    for location_id in dict.fromkeys(locations):
        session.add(StaffUserLocation(user_id=user.id, location_id=location_id))
    await session.flush()
    return user


async def user_locations(session: AsyncSession, user: StaffUser) -> frozenset[str] | None:
    """The locations a user acts at; None (every location) for an admin bound to none."""
    rows = await session.scalars(
        select(StaffUserLocation.location_id).where(StaffUserLocation.user_id == user.id)
    )
    bound = frozenset(rows)
    if not bound and user.role == "admin":
        return None
    return bound


async def _user_actor(session: AsyncSession, user: StaffUser) -> Actor:
    return Actor(
        kind="user",
        id=user.id,
        name=user.username,
        role=user.role,
        locations=await user_locations(session, user),
    )


# --- sessions --------------------------------------------------------------------------------


async def open_session(session: AsyncSession, now: datetime, user: StaffUser) -> str:
    """A new session for `user`; returns the cookie value (only its hash is stored)."""
    cookie = new_secret()
    session.add(
        StaffSession(
            id=digest(cookie),
            user_id=user.id,
            created_at=now,
            expires_at=now + min(SESSION_IDLE, SESSION_MAX),
        )
    )
    return cookie


async def session_actor(db: Database, now: datetime, cookie: str) -> Actor | None:
    """The user behind a session cookie, or None when it is unknown, expired or disabled."""
    if not cookie or len(cookie) > 100:
        return None
    session_id = digest(cookie)
    async with db.read() as session:
        found = (
            await session.execute(
                select(StaffSession, StaffUser)
                .join(StaffUser, StaffUser.id == StaffSession.user_id)
                .where(StaffSession.id == session_id)
            )
        ).first()
        if found is None:
            return None
        row, user = found
        if row.expires_at <= now or not user.active:
            return None
        actor = await _user_actor(session, user)
    moved = min(now + SESSION_IDLE, row.created_at + SESSION_MAX)
    if moved - row.expires_at >= SESSION_REFRESH:
        async with db.write() as session:
            await session.execute(
                update(StaffSession).where(StaffSession.id == session_id).values(expires_at=moved)
            )
    return actor


async def close_session(db: Database, cookie: str) -> None:
    if not cookie or len(cookie) > 100:
        return
    async with db.write() as session:
        await session.execute(delete(StaffSession).where(StaffSession.id == digest(cookie)))


async def forget_expired(db: Database, now: datetime, limits: Limits = LIMITS) -> None:
    """Delete expired sessions, old failure counters and addresses not used for long
    (the worker may call this; sign-in does it as it goes)."""
    async with db.write() as session:
        await _forget_expired(session, now, limits)


async def _forget_expired(session: AsyncSession, now: datetime, limits: Limits) -> None:
    await session.execute(delete(StaffSession).where(StaffSession.expires_at <= now))
    await session.execute(
        delete(LoginFailures).where(LoginFailures.window_start <= now - limits.window)
    )
    await session.execute(
        delete(KnownAddress).where(
            KnownAddress.last_success_at <= now - timedelta(days=KNOWN_ADDRESS_DAYS)
        )
    )


# --- signing in ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignIn:
    """The outcome: a session cookie, or a wait in seconds (throttled), or neither (wrong)."""

    cookie: str | None = None
    actor: Actor | None = None
    wait_seconds: int = 0


def _keys(username: str, address: str) -> tuple[str, str, str]:
    return f"pair:{username}|{address}", f"address:{address}", f"account:{username}"


async def _count_attempt(session: AsyncSession, key: str, now: datetime, limits: Limits) -> Window:
    """Count one attempt for `key` in its window (a new window once the old one is over);
    returns the window as it was before this attempt."""
    insert = pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert
    expired = LoginFailures.window_start <= now - limits.window
    at = literal(now, UTCDateTime())
    stmt = (
        insert(LoginFailures)
        .values(key=key, window_start=now, failures=1)
        .on_conflict_do_update(
            index_elements=[LoginFailures.key],
            set_={
                "failures": case((expired, 1), else_=LoginFailures.failures + 1),
                "window_start": case((expired, at), else_=LoginFailures.window_start),
            },
        )
        .returning(LoginFailures.window_start, LoginFailures.failures)
    )
    start, failures = (await session.execute(stmt)).one()
    return Window(start=start, failures=failures - 1)


async def sign_in(
    db: Database,
    now: datetime,
    username: str,
    password: str,
    address: str,
    limits: Limits = LIMITS,
) -> SignIn:
    """Check a user name and password from `address`, within the throttling limits
    (aufruf.auth.logic.Limits). Logs the outcome, never the password."""
    name = normal_username(username)[:64]
    address = address[:64]
    pair_key, address_key, account_key = _keys(name, address)
    async with db.write() as session:
        user = await session.scalar(select(StaffUser).where(StaffUser.username == name))
        known = user is not None and (
            await session.get(KnownAddress, (user.id, address)) is not None
        )
        wait = throttle_wait(
            pair=await _count_attempt(session, pair_key, now, limits),
            address=await _count_attempt(session, address_key, now, limits),
            account=await _count_attempt(session, account_key, now, limits),
            known_address=known,
            now=now,
            limits=limits,
        )
    who = name if user is not None else "(unknown account)"
    if wait:
        log.warning("sign-in refused for %s from %s: throttled for %ds", who, address, wait)
        return SignIn(wait_seconds=wait)
    usable = user.password_hash if user is not None and user.active else None
    if not await passwords.verify_password(usable, password):
        log.warning("sign-in failed for %s from %s", who, address)
        return SignIn()
    assert user is not None
    new_hash = passwords.hash_password(password) if passwords.needs_rehash(usable) else None
    async with db.write() as session:
        await session.execute(delete(LoginFailures).where(LoginFailures.key == pair_key))
        await session.execute(  # this attempt was no failure
            update(LoginFailures)
            .where(LoginFailures.key.in_([address_key, account_key]), LoginFailures.failures > 0)
            .values(failures=LoginFailures.failures - 1)
        )
        seen = await session.get(KnownAddress, (user.id, address))
        if seen is None:
            session.add(KnownAddress(user_id=user.id, address=address, last_success_at=now))
        else:
            seen.last_success_at = now
        user = await session.get(StaffUser, user.id)
        user.last_login_at = now
        if new_hash:
            user.password_hash = new_hash
        await _forget_expired(session, now, limits)
        cookie = await open_session(session, now, user)
        actor = await _user_actor(session, user)
    log.info("signed in: %s (%s) from %s", user.username, user.role, address)
    return SignIn(cookie=cookie, actor=actor)


# --- tokens ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewToken:
    row: ApiToken
    token: str  # shown once, never stored


async def _first_active(session: AsyncSession, model: type, location_id: str) -> str | None:
    return await session.scalar(
        select(model.id)
        .where(model.location_id == location_id, model.active.is_(True))
        .order_by(model.id)
        .limit(1)
    )


async def _belongs(session: AsyncSession, model: type, item_id: str, location_id: str, noun: str):
    item = await session.get(model, item_id)
    if item is None:
        raise InvalidInput(f"There is no {noun} with the id {item_id!r}.", field=noun)
    if item.location_id != location_id:
        raise InvalidInput(
            f"The {noun} {item_id!r} belongs to location {item.location_id!r}, "
            f"not to {location_id!r}.",
            field=noun,
        )


async def create_token(
    session: AsyncSession,
    now: datetime,
    *,
    role: str,
    location: str | None = None,
    counter: str | None = None,
    kiosk: str | None = None,
    printer: str | None = None,
    name: str | None = None,
) -> NewToken:
    """A new bearer token. A kiosk token without a kiosk and a printer token without a
    printer belong to the location's default one (its first active, by id)."""
    if role not in TOKEN_ROLES:
        raise InvalidInput(f"The role must be one of {', '.join(TOKEN_ROLES)}.", field="role")
    if location is None and role != "admin":
        raise InvalidInput(f"A {role} token needs --location.", field="location")
    for given, noun, roles in (
        (counter, "counter", ("clerk", "display")),
        (kiosk, "kiosk", ("kiosk",)),
        (printer, "printer", ("printer",)),
    ):
        if given is not None and role not in roles:
            raise InvalidInput(
                f"--{noun} goes with a {' or '.join(roles)} token, not with a {role} token.",
                field=noun,
            )
        if given is not None and location is None:
            raise InvalidInput(f"--{noun} needs --location.", field="location")
    if location is not None:
        await _require_locations(session, [location])
    if counter is not None:
        await _belongs(session, Counter, counter, location, "counter")
    if kiosk is not None:
        await _belongs(session, Kiosk, kiosk, location, "kiosk")
    if printer is not None:
        await _belongs(session, Printer, printer, location, "printer")
    if role == "kiosk" and kiosk is None:
        kiosk = await _first_active(session, Kiosk, location)
        if kiosk is None:
            raise InvalidInput(
                f"The location {location!r} has no active kiosk; add one to the directory.",
                field="kiosk",
            )
    if role == "printer" and printer is None:
        printer = await _first_active(session, Printer, location)
        if printer is None:
            raise InvalidInput(
                f"The location {location!r} has no active printer; add one to the directory.",
                field="printer",
            )
    token = new_secret()
    row = ApiToken(
        token_hash=digest(token),
        prefix=token[:PREFIX_LENGTH],
        role=role,
        name=(name or f"{role} {kiosk or printer or counter or location or ''}").strip()[:100],
        location_id=location,
        counter_id=counter,
        kiosk_id=kiosk,
        printer_id=printer,
        created_at=now,
    )
    session.add(row)
    await session.flush()
    return NewToken(row=row, token=token)


async def list_tokens(session: AsyncSession) -> list[ApiToken]:
    return list(await session.scalars(select(ApiToken).order_by(ApiToken.id)))


async def revoke_token(session: AsyncSession, token_id: int, now: datetime) -> ApiToken:
    row = await session.get(ApiToken, token_id)
    if row is None:
        raise NotFound(f"There is no token with the id {token_id}.")
    if row.revoked_at is None:
        row.revoked_at = now
    return row


_TOKEN_ROW = (
    "SELECT id, name, role, location_id, counter_id, kiosk_id, printer_id, revoked_at,"
    " last_used_at FROM api_token WHERE token_hash = $1"
)


async def _token_row(db: Database, token_hash: str) -> tuple | None:
    """(id, name, role, location, counter, kiosk, printer, revoked_at, last_used_at): on
    PostgreSQL one plain read, shared by the requests of one device arriving together (each
    sees a read begun after it arrived, so a revocation counts at once)."""
    if not db.is_sqlite:
        return await db.shared_row(_TOKEN_ROW, token_hash)
    async with db.read() as session:
        row = await session.scalar(select(ApiToken).where(ApiToken.token_hash == token_hash))
    if row is None:
        return None
    return (row.id, row.name, row.role, row.location_id, row.counter_id, row.kiosk_id,
            row.printer_id, row.revoked_at, row.last_used_at)  # fmt: skip


async def token_actor(db: Database, now: datetime, token: str) -> Actor | None:
    """The device or integration behind a bearer token; None when unknown or revoked."""
    if not token or len(token) > 200:
        return None
    found = await _token_row(db, digest(token))
    if found is None:
        return None
    token_id, name, role, location_id, counter_id, kiosk_id, printer_id, revoked, used = found
    if revoked is not None:
        return None
    if used is None or now - used >= TOKEN_TOUCH:
        async with db.write() as session:
            await session.execute(
                update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now)
            )
    return Actor(
        kind="token",
        id=token_id,
        name=name,
        role=role,
        locations=frozenset({location_id}) if location_id else None,
        counter=counter_id,
        kiosk=kiosk_id,
        printer=printer_id,
    )
