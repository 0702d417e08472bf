"""The booking's hot statements on PostgreSQL, as plain SQL on the session's own asyncpg
connection (aufruf.db.driver_connection): a booking is the address's lock, one statement
(a second one in the rare case that its code is taken) and the raised version, last; an
availability snapshot is one statement.
The rules of ARCHITECTURE.md hold as in the portable path of service.py: places are claimed
by conditional upserts in key order in the booking's transaction, and the availability
version is raised in it, its row locked to commit, so versions are in commit order."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

RULES_VERSION = "SELECT rules_version FROM availability_version WHERE location_id = $1"

_LOCK_AND_RULES = """
SELECT (SELECT rules_version FROM availability_version WHERE location_id = $1),
       (SELECT 1 FROM pg_advisory_xact_lock($2::bigint) WHERE $2::bigint IS NOT NULL)
"""


def email_lock_key(email_key: str) -> int:
    """The advisory lock that serialises the bookings of one address (a signed 64-bit number,
    the same on every instance)."""
    digest = hashlib.blake2b(email_key.encode(), digest_size=8, person=b"aufruf-email").digest()
    return int.from_bytes(digest, "big", signed=True)


def begin_and_lock(email_key: str | None) -> str:
    """BEGIN and, with `email_key`, the address's lock (held to commit) as one simple query, a
    single round trip (a simple query takes no parameters: the lock's key is a number)."""
    if email_key is None:
        return "BEGIN"
    return f"BEGIN; SELECT pg_advisory_xact_lock({email_lock_key(email_key)})"


# the whole booking when the address is under its limit and every place is free: the count,
# the claims in key order, the appointment with all it holds (not when its code is taken);
# with $28 the places are held already (a retry under another code): no count, no claims;
# with $29, nothing is claimed unless the location's rules version is still $29 (the rules
# the claims were made from, cached by the instance).
# The availability version is raised apart, last (its row, locked to commit, is every
# booking's of the location: held for the least time)
_BOOK = """
WITH rules AS (
    SELECT coalesce(max(rules_version), 0) AS rules_version
    FROM availability_version WHERE location_id = $1
), active AS (
    SELECT count(*) AS n
    FROM appointment a JOIN contact c ON c.appointment_id = a.id
    WHERE NOT $28 AND $2::varchar IS NOT NULL AND c.email_key = $2
      AND a.status IN ('pending', 'confirmed') AND a.end_at > $3
), claimed AS (
    INSERT INTO capacity_usage AS u (location_id, kind, service_id, at, used, capacity)
    SELECT $1, x.kind, x.service_id, x.at, x.n, x.capacity
    FROM unnest($4::varchar[], $5::varchar[], $6::timestamptz[], $7::int[], $8::int[])
         WITH ORDINALITY AS x(kind, service_id, at, n, capacity, i)
    WHERE NOT $28 AND (SELECT n FROM active) < $9
      AND ($29::int IS NULL OR (SELECT rules_version FROM rules) = $29)
    ORDER BY x.i
    ON CONFLICT (location_id, kind, service_id, at) DO UPDATE
        SET used = u.used + excluded.used, capacity = excluded.capacity
        WHERE u.used + excluded.used <= excluded.capacity
    RETURNING 1
), appt AS (
    INSERT INTO appointment (location_id, start_at, end_at, status, code, nonce, language,
        sequence, created_at, confirmed_at, pending_until, booked_by)
    SELECT $1, $10, $11, $12, $13, $14, $15, 0, $16, $17, $18, $19
    WHERE $28 OR (SELECT count(*) FROM claimed) = cardinality($4::varchar[])
    ON CONFLICT (code) WHERE status IN ('pending', 'confirmed', 'checked_in') DO NOTHING
    RETURNING id
), services AS (
    INSERT INTO appointment_service (appointment_id, service_id, quantity)
    SELECT appt.id, x.service_id, x.quantity
    FROM appt, unnest($20::varchar[], $21::int[]) AS x(service_id, quantity)
), claims AS (
    INSERT INTO appointment_claim (appointment_id, kind, service_id, at, n)
    SELECT appt.id, x.kind, x.service_id, x.at, x.n
    FROM appt, unnest($4::varchar[], $5::varchar[], $6::timestamptz[], $7::int[])
         AS x(kind, service_id, at, n)
), person AS (
    INSERT INTO contact (appointment_id, name, email, email_key, phone, delete_after)
    SELECT appt.id, $22, $23, $24, $25, $26 FROM appt
), message AS (
    INSERT INTO outbox_message (kind, appointment_id, language, details, status, created_at,
        due_at, attempts)
    SELECT $27, appt.id, $15, '{}'::json, 'queued', $16, $16, 0 FROM appt
    WHERE $27::varchar IS NOT NULL
)
SELECT (SELECT n FROM active), (SELECT count(*) FROM claimed), (SELECT id FROM appt),
    (SELECT rules_version FROM rules), set_config('aufruf.booking_location', $1, true)
"""

# last in the transaction: the row stays locked to commit, so versions are in commit order
_BUMP = """
INSERT INTO availability_version AS v (location_id, version, rules_version) VALUES ($1, 1, 1)
ON CONFLICT (location_id) DO UPDATE SET version = v.version + 1
RETURNING v.version
"""

# the same and the COMMIT in one simple query, a single round trip: PostgreSQL commits right
# after raising the version, so the row is locked for that and the commit alone. A simple
# query takes no parameters: the location comes from the booking statement (set_config), and
# the raised version is kept in the session for RAISED to read after the commit.
_BUMP_AND_COMMIT = """
INSERT INTO availability_version AS v (location_id, version, rules_version)
VALUES (current_setting('aufruf.booking_location'), 1, 1)
ON CONFLICT (location_id) DO UPDATE SET version = v.version + 1
RETURNING set_config('aufruf.raised_version', v.version::text, false);
COMMIT
"""
_RAISED = "SELECT current_setting('aufruf.raised_version')::int"

# the version and the claimed places it stands for, read in one snapshot
_SNAPSHOT = """
SELECT v.version, v.rules_version, u.kind, u.service_id, u.at, u.used
FROM (SELECT coalesce(max(version), 0) AS version, coalesce(max(rules_version), 0) AS rules_version
      FROM availability_version WHERE location_id = $1) v
LEFT JOIN capacity_usage u
    ON u.location_id = $1 AND u.at >= $2 AND u.at < $3 AND u.used > 0
"""

Key = tuple[str, str, datetime]


async def lock_email_and_read_rules_version(
    raw: Any, location_id: str, email_key: str | None
) -> int:
    """The location's rules version; with `email_key`, the address's booking lock is taken
    first (held to commit), so two bookings of one address cannot both pass its limit."""
    key = email_lock_key(email_key) if email_key is not None else None
    row = await raw.fetchrow(_LOCK_AND_RULES, location_id, key)
    return row[0] or 0


async def book(
    raw: Any,
    rows: Sequence[tuple[Key, int, int]],
    email_key: str | None,
    now: datetime,
    limit: int,
    values: dict[str, Any],
    need: dict[str, int],
    contact: dict[str, Any],
    message: str | None,
    *,
    held: bool = False,
    rules_version: int | None = None,
) -> tuple[int, int, int | None, int]:
    """The whole booking in one statement but the version: (the address's active
    appointments, rows claimed, the appointment's id, the location's rules version), with the
    outbox `message` (its kind) if any. Nothing is claimed when the address is at `limit`, nor
    (given `rules_version`) when the rules version is another; no appointment is written
    unless every row was claimed, nor when its code is taken (then the id is None and the
    claims stand: call again with another code and `held`, which writes the appointment
    alone)."""
    row = await raw.fetchrow(
        _BOOK,
        values["location_id"],
        email_key,
        now,
        [k for (k, _, _), _, _ in rows],
        [s for (_, s, _), _, _ in rows],
        [at for (_, _, at), _, _ in rows],
        [n for _, n, _ in rows],
        [capacity for _, _, capacity in rows],
        limit,
        values["start_at"],
        values["end_at"],
        values["status"],
        values["code"],
        values["nonce"],
        values["language"],
        values["created_at"],
        values["confirmed_at"],
        values["pending_until"],
        values["booked_by"],
        list(need),
        list(need.values()),
        contact["name"],
        contact["email"],
        contact["email_key"],
        contact["phone"],
        contact["delete_after"],
        message,
        held,
        rules_version,
    )
    return row[0], row[1], row[2], row[3]


async def raise_version(raw: Any, location_id: str) -> int:
    """Raise the location's availability version (call it last: it locks the row to commit)."""
    return await raw.fetchval(_BUMP, location_id)


async def raise_version_and_commit(raw: Any) -> int:
    """Raise the version of the location just booked and commit, in one round trip, on a
    connection whose transaction the caller began itself (Database.own_transaction); the
    raised version."""
    await raw.execute(_BUMP_AND_COMMIT)
    return await raw.fetchval(_RAISED)


async def snapshot(
    raw: Any, location_id: str, start: datetime, end: datetime
) -> tuple[int, int, dict[Key, int]]:
    """(version, rules version, claimed places from `start` to before `end`), one snapshot."""
    rows = await raw.fetch(_SNAPSHOT, location_id, start, end)
    used = {(r[2], r[3], r[4]): r[5] for r in rows if r[2] is not None}
    return rows[0][0], rows[0][1], used
