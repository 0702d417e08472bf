"""E-mails from the outbox reach a real SMTP server: with their parts and calendar files,
exactly once after the server was down, never when refused for good; logs say which message,
never its address, body or links."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, date, datetime, timedelta

from icalendar import Calendar
from sqlalchemy import select, update

from aufruf.booking import service as booking
from aufruf.db import Database
from aufruf.notifications.model import OutboxMessage
from aufruf.notifications.outbox import claim
from aufruf.notifications.render import qr_png
from aufruf.notifications.service import queue_message
from aufruf.offices.model import Service
from tests.builders import a_location
from tests.conftest import SECRET
from tests.notifications.conftest import MAIL_FROM, PUBLIC, a_booking, delivery_to


async def _outbox(db: Database) -> list[OutboxMessage]:
    async with db.read() as session:
        return list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def _calendar(mail) -> tuple[Calendar, object]:
    part = next(p for p in mail.walk() if p.get_content_type() == "text/calendar")
    return Calendar.from_ical(part.get_payload(decode=True)), part


async def test_the_confirmation_arrives_with_text_html_qr_code_and_calendar_file(
    db, clock, location, smtp
):
    async with db.write() as session:
        await session.execute(
            update(Service).values(bring={"de": "Personalausweis", "en": "Identity card"})
        )
    booked = await a_booking(db, clock, "2026-11-24T09:00:00+01:00")

    outcome = await delivery_to(db, smtp).run(clock.now())

    assert outcome.sent == 1
    [mail] = smtp.messages
    code = booked.appointment.code
    assert mail["To"] == "Ada Lovelace <ada@example.org>"
    assert mail["From"] == MAIL_FROM
    assert mail["Message-ID"] == "<outbox-1@stadt.example>"
    assert mail["Subject"] == "Ihr Termin am Dienstag, 24. November 2026 um 09:00"
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    for body in (text, html):
        assert code in body
        assert "Dienstag, 24. November 2026" in body
        assert "09:00" in body
        assert "Rathausstraße 11, 58095 Hagen" in body or "Rathausstraße 11, 58095 Hagen" in body
        assert "Personalausweis" in body
        assert f"{PUBLIC}/a/{booked.token}" in body
    assert '<html lang="de" dir="ltr">' in html
    assert 'src="cid:qr-code"' in html
    [png] = [p for p in mail.walk() if p.get_content_type() == "image/png"]
    assert png["Content-ID"] == "<qr-code>"
    assert png.get_payload(decode=True) == qr_png(code)  # the code, never the token
    calendar, part = _calendar(mail)
    assert part.get_param("method") == "REQUEST"
    assert calendar["METHOD"] == "REQUEST"
    [event] = calendar.walk("VEVENT")
    assert str(event["UID"]) == f"appointment-{booked.appointment.id}@stadt.example"
    assert event["SEQUENCE"] == 0
    assert str(event["ORGANIZER"]) == f"mailto:{MAIL_FROM}"
    assert str(event["ATTENDEE"]) == "mailto:ada@example.org"
    assert event["ATTENDEE"].params["RSVP"] == "FALSE"
    assert "Rathausstraße 11, 58095 Hagen" in str(event["LOCATION"])
    [sent] = await _outbox(db)
    assert (sent.status, sent.attempts, sent.sent_at) == ("sent", 1, clock.now())


async def test_the_calendar_file_has_the_local_time_after_the_clocks_go_back(db, clock, smtp):
    await a_location(db)
    clock.set(datetime(2026, 10, 24, 8, 0, tzinfo=UTC))  # summer time, Saturday
    booked = await a_booking(db, clock, "2026-10-26T09:00:00+01:00")  # winter time, Monday

    await delivery_to(db, smtp).run(clock.now())

    calendar, _ = _calendar(smtp.messages[0])
    [event] = calendar.walk("VEVENT")
    start = event.decoded("DTSTART")
    assert (start.hour, start.minute) == (9, 0)
    assert str(start.tzinfo) == "Europe/Berlin"
    assert start.utcoffset() == timedelta(hours=1)
    assert event["DTSTART"].params["TZID"] == "Europe/Berlin"
    assert event.decoded("DTEND") - start == booked.appointment.end_at - booked.appointment.start_at
    assert [str(tz["TZID"]) for tz in calendar.walk("VTIMEZONE")] == ["Europe/Berlin"]


async def test_reschedule_and_cancel_keep_the_uid_and_raise_the_sequence(db, clock, location, smtp):
    booked = await a_booking(db, clock, "2026-11-24T09:00:00+01:00")
    delivery = delivery_to(db, smtp)
    await delivery.run(clock.now())
    async with db.write() as session:
        appointment = await booking.by_token(session, SECRET, booked.token, for_update=True)
        await booking.reschedule(
            session, appointment, datetime.fromisoformat("2026-11-25T10:00:00+01:00"), clock.now()
        )
    await delivery.run(clock.now())
    async with db.write() as session:
        appointment = await booking.by_token(session, SECRET, booked.token, for_update=True)
        await booking.cancel_by_citizen(session, appointment, clock.now())
    await delivery.run(clock.now())

    events = []
    for mail in smtp.messages:
        calendar, part = _calendar(mail)
        [event] = calendar.walk("VEVENT")
        events.append((calendar["METHOD"], part.get_param("method"), event))
    assert [(m, p) for m, p, _ in events] == [
        ("REQUEST", "REQUEST"),
        ("REQUEST", "REQUEST"),
        ("CANCEL", "CANCEL"),
    ]
    assert len({str(e["UID"]) for _, _, e in events}) == 1
    assert [e["SEQUENCE"] for _, _, e in events] == [0, 1, 2]
    assert events[1][2].decoded("DTSTART").hour == 10
    assert events[2][2]["STATUS"] == "CANCELLED"


async def test_a_message_waits_while_the_server_is_down_and_arrives_exactly_once(
    db, clock, location, smtp
):
    for start in ("09:00", "09:20", "09:40"):
        await a_booking(db, clock, f"2026-11-24T{start}:00+01:00")
    delivery = delivery_to(db, smtp)
    smtp.stop()

    first = await delivery.run(clock.now())
    again_at_once = await delivery.run(clock.now())
    clock.advance(minutes=1)
    second = await delivery.run(clock.now())
    waiting = await _outbox(db)
    smtp.start()
    clock.advance(minutes=1)
    too_early = await delivery.run(clock.now())
    clock.advance(minutes=1)
    third = await delivery.run(clock.now())
    after = await delivery.run(clock.now())

    assert (first.retried, again_at_once.retried, second.retried) == (3, 0, 3)
    assert {(m.status, m.attempts) for m in waiting} == {("queued", 2)}
    assert all(m.due_at == clock.now() for m in waiting)  # 1, then 2 minutes later
    assert all("ConnectionRefused" in m.last_error or "onnect" in m.last_error for m in waiting)
    assert too_early.sent == 0
    assert (third.sent, after.sent) == (3, 0)
    ids = sorted(m["Message-ID"] for m in smtp.messages)
    assert ids == [f"<outbox-{n}@stadt.example>" for n in (1, 2, 3)]
    assert {m.status for m in await _outbox(db)} == {"sent"}


async def test_a_temporary_refusal_is_tried_again(db, clock, location, smtp):
    await a_booking(db, clock, "2026-11-24T09:00:00+01:00")
    smtp.inbox.refuse = "451 4.3.0 Try again later"

    outcome = await delivery_to(db, smtp).run(clock.now())

    [message] = await _outbox(db)
    assert outcome.retried == 1
    assert (message.status, message.last_error) == ("queued", "451 4.3.0 Try again later")
    smtp.inbox.refuse = None
    clock.advance(minutes=1)
    assert (await delivery_to(db, smtp).run(clock.now())).sent == 1


async def test_a_permanent_refusal_marks_the_message_failed_with_the_reason(
    db, clock, location, smtp
):
    await a_booking(db, clock, "2026-11-24T09:00:00+01:00")
    smtp.inbox.refuse = "550 5.1.1 Mailbox unavailable"

    outcome = await delivery_to(db, smtp).run(clock.now())
    clock.advance(hours=2)
    later = await delivery_to(db, smtp).run(clock.now())

    [message] = await _outbox(db)
    assert (outcome.failed, later.failed) == (1, 0)
    assert message.status == "failed"
    assert message.last_error == "550 5.1.1 Mailbox unavailable"
    assert smtp.messages == []


async def test_without_smtp_messages_are_kept_and_the_log_has_no_token_or_body(
    db, clock, location, caplog
):
    booked = await a_booking(db, clock, "2026-11-24T09:00:00+01:00")
    caplog.set_level(logging.DEBUG)

    outcome = await delivery_to(db, None).run(clock.now())

    [message] = await _outbox(db)
    assert (outcome.kept, message.status) == (1, "kept")
    assert "kept outbox message 1 (booking_confirmed)" in caplog.text
    for secret in (booked.token, "ada@example.org", booked.appointment.code, "/a/"):
        assert secret not in caplog.text


async def test_the_logs_of_sending_have_no_token_address_or_body(db, clock, location, smtp, caplog):
    booked = await a_booking(db, clock, "2026-11-24T09:00:00+01:00")
    caplog.set_level(logging.DEBUG)

    await delivery_to(db, smtp).run(clock.now())

    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("aufruf"))
    assert "sent outbox message 1 (booking_confirmed)" in ours
    for secret in (booked.token, "ada@example.org", booked.appointment.code, "Rathaus"):
        assert secret not in ours


async def test_a_booking_without_an_e_mail_address_is_kept_not_failed(db, clock, location, smtp):
    booked = await a_booking(db, clock, "2026-11-24T09:00:00+01:00", email=None, by_staff=True)
    async with db.write() as session:
        queue_message(session, "booking_rescheduled", booked.appointment.id, "de", clock.now())

    outcome = await delivery_to(db, smtp).run(clock.now())

    [message] = await _outbox(db)
    assert outcome.kept == 1
    assert (message.status, message.last_error) == ("kept", "no e-mail address")
    assert smtp.messages == []


async def test_the_office_cancellation_has_the_reason_and_a_link_to_book_again(
    db, clock, location, smtp
):
    await a_booking(db, clock, "2026-11-24T09:00:00+01:00", language="en")
    async with db.write() as session:
        await booking.cancel_for_closure(
            session,
            "amt",
            date(2026, 11, 24),
            date(2026, 11, 24),
            {"de": "Stromausfall", "en": "Power cut"},
            clock.now(),
        )

    await delivery_to(db, smtp).run(clock.now())

    # the confirmation no longer applies once cancelled: only the cancellation goes out
    [mail] = smtp.messages
    assert mail["Subject"] == "The office has cancelled your appointment"
    text = mail.get_body(("plain",)).get_content()
    assert "Reason: Power cut" in text
    assert f"Book a new appointment: {PUBLIC}/" in text
    calendar, part = _calendar(mail)
    assert (calendar["METHOD"], part.get_param("method")) == ("CANCEL", "CANCEL")
    assert [m.status for m in await _outbox(db)] == ["kept", "sent"]


async def test_a_pending_booking_gets_the_link_to_confirm_it(db, clock, smtp):
    await a_location(db, double_opt_in=True)
    booked = await a_booking(db, clock, "2026-11-24T09:00:00+01:00")

    await delivery_to(db, smtp).run(clock.now())

    [mail] = smtp.messages
    assert mail["Subject"] == "Bitte bestätigen Sie Ihren Termin"
    assert f"{PUBLIC}/a/{booked.token}/confirm" in mail.get_body(("plain",)).get_content()
    assert not [p for p in mail.walk() if p.get_content_type() == "text/calendar"]


async def test_arabic_e_mails_are_right_to_left_and_turkish_ones_turkish(db, clock, location, smtp):
    await a_booking(db, clock, "2026-11-24T09:00:00+01:00", language="ar")
    await a_booking(db, clock, "2026-11-24T09:20:00+01:00", language="tr", email="bora@example.org")

    await delivery_to(db, smtp).run(clock.now())

    arabic, turkish = sorted(smtp.messages, key=lambda m: m["Message-ID"])
    assert '<html lang="ar" dir="rtl">' in arabic.get_body(("html",)).get_content()
    assert "رمز الحجز" in arabic.get_body(("plain",)).get_content()
    assert "Rezervasyon kodu" in turkish.get_body(("plain",)).get_content()
    assert "randevunuz" in turkish["Subject"]


async def test_two_workers_at_once_never_claim_the_same_message(db, clock, location):
    async with db.write() as session:
        booked = await booking.book(
            session,
            SECRET,
            clock.now(),
            booking.BookingRequest(
                location="amt",
                services=["pass"],
                start=datetime.fromisoformat("2026-11-24T09:00:00+01:00"),
                name="Ada",
                email="ada@example.org",
            ),
        )
        for _ in range(39):
            queue_message(session, "booking_rescheduled", booked.appointment.id, "de", clock.now())
    other = Database(db.url)
    try:
        claims = await asyncio.gather(
            *(claim(d, clock.now(), 5) for _ in range(4) for d in (db, other))
        )
    finally:
        await other.dispose()

    ids = [c.id for batch in claims for c in batch]
    assert len(ids) == len(set(ids)) == 40


async def test_two_deliveries_at_once_send_every_message_exactly_once(db, clock, smtp):
    await a_location(db, places=3)
    for n, start in enumerate(("09:00", "09:00", "09:00", "09:20", "09:20", "09:20")):
        await a_booking(db, clock, f"2026-11-24T{start}:00+01:00", email=f"person{n}@example.org")
    other = Database(db.url)
    try:
        outcomes = await asyncio.gather(
            delivery_to(db, smtp).run(clock.now()), delivery_to(other, smtp).run(clock.now())
        )
    finally:
        await other.dispose()

    assert sum(o.sent for o in outcomes) == 6
    assert sorted(m["Message-ID"] for m in smtp.messages) == [
        f"<outbox-{n}@stadt.example>" for n in range(1, 7)
    ]


async def test_a_message_whose_worker_died_is_sent_again_after_the_lease(db, clock, location, smtp):
    await a_booking(db, clock, "2026-11-24T09:00:00+01:00")
    [lost] = await claim(db, clock.now())  # a worker claimed it and died

    nothing_yet = await delivery_to(db, smtp).run(clock.now())
    clock.advance(minutes=6)
    outcome = await delivery_to(db, smtp).run(clock.now())

    assert (nothing_yet.sent, outcome.sent) == (0, 1)
    [message] = await _outbox(db)
    assert (message.status, message.attempts) == ("sent", 2)
    assert lost.id == message.id
