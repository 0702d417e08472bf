"""The hot statements of the queue on PostgreSQL, as plain SQL on the session's own asyncpg
connection (aufruf.db.driver_connection): a draw's ticket with its number, its services and
its event with the location's next seq in one statement, so the two rows every draw locks are
held for that statement and the commit alone; a counter's call (the current ticket done, the
next one called, both events) in one statement too; the reads of the line and of a live view.
The rules are those of the portable path in service.py: the number row and the sequence row
stay locked to commit, so numbers never repeat and commit order is seq order."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aufruf.db import Database
    from aufruf.queue.model import QueueEvent

# the number is the letter and the count, at least three digits (A001 … A999, A1000); the
# rows flow number -> ticket -> seq, so every draw locks the number row, then the sequence row
_ISSUE = """
WITH number AS (
    INSERT INTO ticket_number AS n (location_id, day, letter, last) VALUES ($1, $2, $3, 1)
    ON CONFLICT (location_id, day, letter) DO UPDATE SET last = n.last + 1
    RETURNING $3 || CASE WHEN last < 100 THEN lpad(last::text, 3, '0') ELSE last::text END
        AS number
), ticket AS (
    INSERT INTO ticket (location_id, day, number, status, nonce, source, kiosk_id,
        issued_at, arrived_at, priority, call_count)
    SELECT $1, $2, number.number, 'waiting', $4, $5, $6, $7, $7, 0, 0 FROM number
    RETURNING id, number
), services AS (
    INSERT INTO ticket_service (ticket_id, service_id)
    SELECT ticket.id, s FROM ticket, unnest($8::varchar[]) AS s
), next AS (
    INSERT INTO location_sequence AS q (location_id, seq) SELECT $1, 1 FROM ticket
    ON CONFLICT (location_id) DO UPDATE SET seq = q.seq + 1
    RETURNING seq
), event AS (
    INSERT INTO queue_event (location_id, seq, kind, ticket_id, number, services, counter_id,
        actor, at, data)
    SELECT $1, next.seq, 'issued', ticket.id, ticket.number, $9::json, NULL, $10, $7,
        '{}'::json
    FROM next, ticket
    RETURNING seq
)
SELECT ticket.id, ticket.number, event.seq FROM ticket, event
"""

# the draw of a kiosk or of staff as one statement that commits by itself (run outside any
# transaction): the ticket, its services, its event and its print job ($11: the printer, or
# NULL for none). The number and sequence rows are then locked while PostgreSQL executes and
# commits it, with no round trip to the app in between.
_DRAW = _ISSUE.replace(
    "SELECT ticket.id, ticket.number, event.seq FROM ticket, event",
    """, job AS (
    INSERT INTO print_job (printer_id, location_id, ticket_id, kind, status, attempts,
        created_at, due_at, expires_at, actor)
    SELECT $11, $1, ticket.id, 'ticket', 'queued', 0, $7, $7, $12, $13
    FROM ticket WHERE $11::varchar IS NOT NULL
    RETURNING id
)
SELECT ticket.id, ticket.number, event.seq, (SELECT id FROM job) FROM ticket, event""",
)


async def issue_ticket(
    raw: Any,
    location_id: str,
    day: date,
    letter: str,
    nonce: str,
    source: str,
    kiosk_id: str | None,
    now: datetime,
    services: list[str],
    actor: str | None,
) -> tuple[int, str, int]:
    """A waiting ticket with the next number of its letter and day, its services and its
    "issued" event under the location's next seq: (id, number, seq). Both rows it locks stay
    locked to commit."""
    row = await raw.fetchrow(
        _ISSUE, location_id, day, letter, nonce, source, kiosk_id, now, services,
        json.dumps(services), actor,
    )  # fmt: skip
    return row[0], row[1], row[2]


async def draw_ticket(
    db: Database,
    location_id: str,
    day: date,
    letter: str,
    nonce: str,
    source: str,
    kiosk_id: str | None,
    now: datetime,
    services: list[str],
    actor: str | None,
    printer: tuple[str, datetime, str] | None,
) -> tuple[int, str, int, int | None]:
    """issue_ticket as a statement of its own that commits as it ends, with the print job on
    `printer` (its id, the job's deadline, who asked): (id, number, seq, print job id)."""
    job = printer or (None, None, None)
    row = await db.commit_row(
        _DRAW, location_id, day, letter, nonce, source, kiosk_id, now, services,
        json.dumps(services), actor, *job,
    )  # fmt: skip
    return row[0], row[1], row[2], row[3]


# events of one location with its next seqs, in their order ($2: how many): the sequence row
# stays locked to commit
_RECORD = """
WITH next AS (
    INSERT INTO location_sequence AS q (location_id, seq) VALUES ($1, $2)
    ON CONFLICT (location_id) DO UPDATE SET seq = q.seq + $2
    RETURNING seq
)
INSERT INTO queue_event (location_id, seq, kind, ticket_id, number, services, counter_id,
    actor, at, data)
SELECT $1, next.seq - $2 + e.i, e.kind, e.ticket_id, e.number, e.services::json,
    e.counter_id, e.actor, e.at, e.data::json
FROM next, unnest($3::text[], $4::int[], $5::text[], $6::text[], $7::text[], $8::text[],
    $9::timestamptz[], $10::text[]) WITH ORDINALITY
    AS e(kind, ticket_id, number, services, counter_id, actor, at, data, i)
RETURNING seq
"""


async def record_events(raw: Any, location_id: str, events: list[QueueEvent]) -> int:
    """Write `events` of `location_id` (their seqs not yet set) under the location's next
    seqs, in their order, in one statement; the last of those seqs."""
    seqs = await raw.fetch(
        _RECORD,
        location_id,
        len(events),
        [e.kind for e in events],
        [e.ticket_id for e in events],
        [e.number for e in events],
        [json.dumps(e.services) for e in events],
        [e.counter_id for e in events],
        [e.actor for e in events],
        [e.at for e in events],
        [json.dumps(e.data) for e in events],
    )
    return max(row[0] for row in seqs)


# the waiting tickets of a location, one row per ticket (service.WaitingRow)
WAITING = """
SELECT t.id, t.number, t.arrived_at, t.called_at, t.priority, t.appointment_id, a.start_at,
    array_agg(s.service_id ORDER BY s.service_id)
FROM ticket t
JOIN ticket_service s ON s.ticket_id = t.id
LEFT JOIN appointment a ON a.id = t.appointment_id
WHERE t.location_id = $1 AND t.status = 'waiting'
GROUP BY t.id, a.start_at
ORDER BY t.id
"""
WAITING_AMONG = WAITING.replace("t.status = 'waiting'", "t.status = 'waiting' AND t.id = ANY($2)")

# what a location's figures need besides its waiting tickets (service.LineContext), in one
# statement: the queue rules; the active counters in their order with their services and
# whether they are open; each offered service's configured minutes (the location's own, else
# the service's); the 200 latest service times; and what each counter is busy with now
_CONTEXT_COLUMNS = """
    (SELECT queue::text FROM location WHERE id = $1),
    ARRAY(
        SELECT ROW(c.id::text, coalesce(s.status = 'open', false),
            ARRAY(SELECT cs.service_id::text FROM counter_service cs WHERE cs.counter_id = c.id))
        FROM counter c LEFT JOIN counter_state s ON s.counter_id = c.id
        WHERE c.location_id = $1 AND c.active
        ORDER BY c.position, c.id
    ),
    ARRAY(
        SELECT ROW(sv.id::text, coalesce(nullif(ls.duration_minutes, 0), sv.duration_minutes))
        FROM service sv JOIN location_service ls ON ls.service_id = sv.id
        WHERE ls.location_id = $1
    ),
    ARRAY(
        SELECT ROW(ts.service_id::text, t.started_at, t.called_at, t.finished_at)
        FROM ticket_service ts JOIN ticket t ON t.id = ts.ticket_id
        WHERE t.location_id = $1 AND t.status = 'done' AND t.finished_at IS NOT NULL
        ORDER BY t.finished_at DESC
        LIMIT 200
    ),
    ARRAY(
        SELECT ROW(s.counter_id::text, coalesce(t.started_at, t.called_at),
            ARRAY(SELECT ts.service_id::text FROM ticket_service ts WHERE ts.ticket_id = t.id))
        FROM counter_state s
        JOIN counter c ON c.id = s.counter_id
        JOIN ticket t ON t.id = s.current_ticket_id
        WHERE c.location_id = $1 AND c.active AND t.status IN ('called', 'serving')
    )"""
LINE_CONTEXT = "SELECT" + _CONTEXT_COLUMNS

# a live view's reads in one statement, so one snapshot (aufruf.display.service): the
# location's seq; the tickets named by its events after seq $2 (none when $2 < 0), whether
# one named no ticket, and those of them waiting (as WAITING's rows, plus the appointment's
# code); LINE_CONTEXT's five columns; the active counters in their order, each with its
# state and its current ticket (with the ticket's counter's name, services and appointment);
# the latest $3 calls and recalls up to the seq, newest first; and the location's time zone
VIEW_CHANGED = (
    """
WITH seq AS (
    SELECT coalesce((SELECT seq FROM location_sequence WHERE location_id = $1), 0) AS seq
), named AS (
    SELECT e.ticket_id FROM queue_event e, seq
    WHERE $2 >= 0 AND e.location_id = $1 AND e.seq > $2 AND e.seq <= seq.seq
)
SELECT
    seq.seq,
    ARRAY(SELECT DISTINCT ticket_id FROM named WHERE ticket_id IS NOT NULL),
    EXISTS (SELECT FROM named WHERE ticket_id IS NULL),
    ARRAY(
        SELECT ROW(t.id, t.number::text, t.arrived_at, t.called_at, t.priority,
            t.appointment_id, a.start_at,
            ARRAY(SELECT s.service_id::text FROM ticket_service s WHERE s.ticket_id = t.id
                ORDER BY s.service_id),
            a.code::text)
        FROM ticket t LEFT JOIN appointment a ON a.id = t.appointment_id
        WHERE t.location_id = $1 AND t.status = 'waiting'
            AND t.id IN (SELECT ticket_id FROM named)
            AND EXISTS (SELECT FROM ticket_service s WHERE s.ticket_id = t.id)
        ORDER BY t.id
    ),"""
    + _CONTEXT_COLUMNS
    + """,
    ARRAY(
        SELECT ROW(c.id::text, c.name::text, s.status::text, s.clerk::text, t.id,
            t.number::text, t.status::text, t.arrived_at, t.called_at, tc.name::text,
            ARRAY(SELECT ts.service_id::text FROM ticket_service ts WHERE ts.ticket_id = t.id
                ORDER BY ts.service_id),
            ap.code::text, ap.start_at)
        FROM counter c
        LEFT JOIN counter_state s ON s.counter_id = c.id
        LEFT JOIN ticket t ON t.id = s.current_ticket_id
        LEFT JOIN counter tc ON tc.id = t.counter_id
        LEFT JOIN appointment ap ON ap.id = t.appointment_id
        WHERE c.location_id = $1 AND c.active
        ORDER BY c.position, c.id
    ),
    ARRAY(
        SELECT ROW(e.number::text, e.counter_id::text, e.data::text, e.at)
        FROM queue_event e, seq
        WHERE e.location_id = $1 AND e.seq <= seq.seq AND e.kind IN ('called', 'recalled')
        ORDER BY e.seq DESC
        LIMIT $3
    ),
    (SELECT timezone::text FROM location WHERE id = $1)
FROM seq
"""
)
# the same with every waiting ticket (with $2 < 0: no tickets named)
VIEW_WHOLE = VIEW_CHANGED.replace("            AND t.id IN (SELECT ticket_id FROM named)\n", "")


# a counter's call as one statement: the counter's current ticket ($5, or NULL) done (with its
# appointment completed) unless it already left the called and serving states; the head of the
# counter's line taken and called; the counter's state pointing at it; and an event for each
# of the two, "done" then "called" (with the counter's name $6, by actor $7), under the
# location's next seqs. The rows: the ticket ended (i = 1) and the ticket called (i = 2), each
# with all its columns, its services (the called one's, sorted) and the seqs written.
#
# The head of the line at location $1 for counter $2 at $3 is in the call order of
# logic.order_key: priority, then (without an appointment advantage) due appointments by their
# time before everyone else by arrival, or (with the advantage $8) one band where a due
# appointment ranks from the earlier of its arrival and its time less the advantage; ties by
# arrival, then id. Due: from $4 (the grace) before the appointment's time. Only tickets whose
# every service the counter serves; a ticket another counter holds is skipped.
_DUE = "a.start_at IS NOT NULL AND a.start_at <= $3::timestamptz + $4::interval"
_CALL = """
WITH ended AS (
    UPDATE ticket SET status = 'done', finished_at = $3::timestamptz
    WHERE id = $5 AND status IN ('called', 'serving')
    RETURNING *
), completed AS (
    UPDATE appointment SET status = 'completed' WHERE id IN (SELECT appointment_id FROM ended)
), head AS (
    SELECT t.id FROM ticket t LEFT JOIN appointment a ON a.id = t.appointment_id
    WHERE t.location_id = $1 AND t.status = 'waiting'
        AND NOT EXISTS (
            SELECT FROM ticket_service ts WHERE ts.ticket_id = t.id AND ts.service_id NOT IN (
                SELECT cs.service_id FROM counter_service cs WHERE cs.counter_id = $2))
    ORDER BY t.priority DESC, {order}, t.arrived_at, t.id
    LIMIT 1
    FOR UPDATE OF t SKIP LOCKED
), taken AS (
    UPDATE ticket SET status = 'called', counter_id = $2, call_count = 1, called_at = $3
    FROM head WHERE ticket.id = head.id AND ticket.status = 'waiting'
    RETURNING ticket.*, ARRAY(
        SELECT s.service_id::text FROM ticket_service s WHERE s.ticket_id = ticket.id
        ORDER BY s.service_id) AS services
), seated AS (
    UPDATE counter_state SET current_ticket_id = (SELECT id FROM taken), updated_at = $3
    WHERE counter_id = $2 AND (current_ticket_id IS NOT NULL OR EXISTS (SELECT FROM taken))
), news AS (
    SELECT 1 AS i, 'done' AS kind, id AS ticket_id, number::text AS number,
        '[]' AS services, '{{}}' AS data
    FROM ended
    UNION ALL
    SELECT 2, 'called', id, number::text, array_to_json(services)::text,
        json_build_object('counter', $6::text)::text
    FROM taken
), next AS (
    INSERT INTO location_sequence AS q (location_id, seq)
    SELECT $1, count(*) FROM news HAVING count(*) > 0
    ON CONFLICT (location_id) DO UPDATE SET seq = q.seq + excluded.seq
    RETURNING seq
), written AS (
    INSERT INTO queue_event (location_id, seq, kind, ticket_id, number, services, counter_id,
        actor, at, data)
    SELECT $1, next.seq - count(*) OVER () + row_number() OVER (ORDER BY n.i), n.kind,
        n.ticket_id, n.number, n.services::json, $2, $7::text, $3, n.data::json
    FROM next, news n
    RETURNING seq
), seqs AS (
    SELECT array_agg(seq ORDER BY seq) AS seqs FROM written
)
SELECT 1 AS i, ended.*, NULL::text[] AS services, seqs.seqs FROM ended, seqs
UNION ALL
SELECT 2, taken.*, seqs.seqs FROM taken, seqs
ORDER BY i
"""
CALL_DUE_FIRST = _CALL.format(
    order=f"CASE WHEN {_DUE} THEN 0 ELSE 1 END, CASE WHEN {_DUE} THEN a.start_at"
    " ELSE t.arrived_at END"
)
CALL_WITH_ADVANTAGE = _CALL.format(
    order=f"CASE WHEN {_DUE} THEN least(t.arrived_at, a.start_at - $8::interval)"
    " ELSE t.arrived_at END"
)
