"""Reminders: the day before at 18:00 local time by default, once per appointment and time,
never for a cancelled one."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from aufruf.booking import service as booking
from aufruf.notifications.logic import (
    ReminderRule,
    parse_reminder_rule,
    reminder_at,
    retry_delay,
)
from aufruf.notifications.mail import SMTPServer
from tests.conftest import SECRET
from tests.notifications.conftest import PUBLIC, a_booking, delivery_to

BERLIN = ZoneInfo("Europe/Berlin")


async def test_the_reminder_goes_out_the_evening_before_once(db, clock, location, smtp):
    booked = await a_booking(db, clock, "2026-11-24T09:00:00+01:00")
    delivery = delivery_to(db, smtp, reminder=ReminderRule())
    await delivery.run(clock.now())  # the confirmation

    clock.set(datetime(2026, 11, 23, 16, 59, tzinfo=UTC))  # 17:59 in Berlin
    before = await delivery.run(clock.now())
    clock.set(datetime(2026, 11, 23, 17, 0, tzinfo=UTC))  # 18:00 in Berlin
    due = await delivery.run(clock.now())
    clock.advance(hours=1)
    later = await delivery.run(clock.now())

    assert (before.sent, due.sent, later.sent) == (0, 1, 0)
    reminder = smtp.messages[-1]
    assert reminder["Subject"].startswith("Erinnerung: Ihr Termin am Dienstag, 24. November")
    assert f"{PUBLIC}/a/{booked.token}" in reminder.get_body(("plain",)).get_content()


async def test_a_cancelled_appointment_gets_no_reminder(db, clock, location, smtp):
    booked = await a_booking(db, clock, "2026-11-24T09:00:00+01:00")
    async with db.write() as session:
        appointment = await booking.by_token(session, SECRET, booked.token, for_update=True)
        await booking.cancel_by_citizen(session, appointment, clock.now())
    delivery = delivery_to(db, smtp, reminder=ReminderRule())

    clock.set(datetime(2026, 11, 23, 18, 0, tzinfo=UTC))
    await delivery.run(clock.now())

    assert [m["Subject"] for m in smtp.messages] == ["Ihr Termin wurde abgesagt"]


async def test_a_booking_made_after_the_reminder_time_gets_none(db, clock, location, smtp):
    clock.set(datetime(2026, 11, 23, 17, 30, tzinfo=UTC))  # 18:30 the evening before
    await a_booking(db, clock, "2026-11-24T09:00:00+01:00")

    outcome = await delivery_to(db, smtp, reminder=ReminderRule()).run(clock.now())

    assert outcome.sent == 1  # the confirmation only


def test_the_reminder_time_follows_the_local_calendar_across_the_change_of_time():
    start = datetime(2026, 10, 26, 9, 0, tzinfo=BERLIN)  # Monday after the clocks went back

    moment = reminder_at(ReminderRule(days_before=2), start, BERLIN)

    assert moment == datetime(2026, 10, 24, 18, 0, tzinfo=BERLIN)
    assert moment.utcoffset().total_seconds() == 2 * 3600  # still summer time then


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, ReminderRule(1, time(18, 0))),
        ("", ReminderRule(1, time(18, 0))),
        ("-1d 18:00", ReminderRule(1, time(18, 0))),
        ("-2d 9:30", ReminderRule(2, time(9, 30))),
        ("off", None),
    ],
)
def test_the_reminder_setting(text, expected):
    assert parse_reminder_rule(text) == expected


@pytest.mark.parametrize("text", ["18:00", "-1d 25:00", "tomorrow"])
def test_a_reminder_setting_that_makes_no_sense_is_refused(text):
    with pytest.raises(ValueError, match="AUFRUF_REMINDER"):
        parse_reminder_rule(text)


def test_tries_are_spaced_out_1_2_4_minutes_up_to_an_hour():
    minutes = [retry_delay(n).total_seconds() / 60 for n in range(1, 10)]

    assert minutes == [1, 2, 4, 8, 16, 32, 60, 60, 60]


def test_the_smtp_url_names_host_port_tls_and_login():
    plain = SMTPServer.from_url("smtp://mailer:s%40cret@mail.example.org:587")
    implicit = SMTPServer.from_url("smtps://mail.example.org")

    assert (plain.host, plain.port, plain.implicit_tls) == ("mail.example.org", 587, False)
    assert (plain.username, plain.password) == ("mailer", "s@cret")
    assert (implicit.port, implicit.implicit_tls, implicit.username) == (465, True, None)
    with pytest.raises(ValueError):
        SMTPServer.from_url("http://mail.example.org")
