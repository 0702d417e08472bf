"""A print job is written in the ticket's transaction, addressed to one printer: a kiosk's
ticket on that kiosk's printer, a staff ticket on the printer staff name (or none)."""

from __future__ import annotations

from sqlalchemy import select

from aufruf.printer.model import PrintJob
from tests.printer.conftest import LOCATION, a_printing_office, draw


async def _jobs(db) -> list[PrintJob]:
    async with db.read() as session:
        return list(await session.scalars(select(PrintJob).order_by(PrintJob.id)))


async def test_a_kiosk_ticket_is_queued_on_that_kiosks_printer(db, client, morning):
    office = await a_printing_office(db, morning)

    answer = await draw(client, office.kiosk_a)

    assert answer.status_code == 201, answer.text
    ticket = answer.json()
    [job] = await _jobs(db)
    assert (job.printer_id, job.ticket_id, job.status, job.kind) == (
        "drucker-a",
        ticket["id"],
        "queued",
        "ticket",
    )
    assert ticket["print"] == {"printer": "drucker-a", "status": "queued", "job": job.id}


async def test_two_kiosks_never_queue_on_each_others_printer(db, client, morning):
    office = await a_printing_office(db, morning)

    tickets = {}
    for kiosk, token in (("a", office.kiosk_a), ("b", office.kiosk_b), ("a2", office.kiosk_a)):
        tickets[kiosk] = (await draw(client, token)).json()["id"]

    printed_on = {job.ticket_id: job.printer_id for job in await _jobs(db)}
    assert printed_on == {
        tickets["a"]: "drucker-a",
        tickets["b"]: "drucker-b",
        tickets["a2"]: "drucker-a",
    }


async def test_a_staff_ticket_prints_only_where_staff_ask(db, client, morning):
    office = await a_printing_office(db, morning)

    plain = await draw(client, office.clerk)
    printed = await draw(client, office.clerk, print="drucker-b")

    assert "print" not in plain.json()
    assert printed.json()["print"]["printer"] == "drucker-b"
    assert [(j.ticket_id, j.printer_id) for j in await _jobs(db)] == [
        (printed.json()["id"], "drucker-b")
    ]


async def test_a_printer_of_another_location_is_refused_and_no_ticket_is_drawn(db, client, morning):
    office = await a_printing_office(db, morning)

    answer = await draw(client, office.clerk, print="other-drucker")
    queue = await client.get(
        f"/api/v1/locations/{LOCATION}/queue",
        headers={"Authorization": f"Bearer {office.clerk}"},
    )

    assert answer.status_code == 400
    assert answer.json()["extra"][0]["key"] == "print"
    assert queue.json() == []
    assert await _jobs(db) == []


async def test_the_job_keeps_no_secret_token(db, client, morning):
    office = await a_printing_office(db, morning)

    ticket = (await draw(client, office.kiosk_a)).json()

    [job] = await _jobs(db)
    stored = " ".join(str(getattr(job, c.key)) for c in PrintJob.__table__.columns)
    assert ticket["token"] not in stored


async def _booking_code(db, morning, start_utc_hour_minute=(8, 10)) -> str:
    from datetime import UTC, datetime, timedelta

    from aufruf.booking.service import BookingRequest, book
    from tests.conftest import SECRET

    hour, minute = start_utc_hour_minute
    async with db.write() as session:
        booked = await book(
            session,
            SECRET,
            morning.now() - timedelta(days=2),
            BookingRequest(
                location=LOCATION,
                services=["pass"],
                start=datetime(2026, 11, 23, hour, minute, tzinfo=UTC),
                name="E",
                email="e@example.org",
            ),
        )
    return booked.appointment.code


async def test_a_check_in_prints_the_booked_time_on_the_kiosks_printer(db, client, morning):
    from aufruf.printer.render import RenderConfig, job_bytes
    from tests.conftest import SECRET
    from tests.printer.paper import read_paper

    office = await a_printing_office(db, morning)
    code = await _booking_code(db, morning)

    answer = await client.post(
        f"/api/v1/locations/{LOCATION}/checkins",
        json={"code": code},
        headers={"Authorization": f"Bearer {office.kiosk_b}"},
    )

    assert answer.status_code == 201, answer.text
    [job] = await _jobs(db)
    assert (job.printer_id, answer.json()["print"]["printer"]) == ("drucker-b", "drucker-b")
    async with db.read() as session:
        data = await job_bytes(
            session, job.id, RenderConfig("https://x.example", SECRET), morning.now()
        )
    assert read_paper(data).has("Termin 09:10 / Appointment 09:10")


async def test_staff_check_in_prints_where_staff_ask(db, client, morning):
    office = await a_printing_office(db, morning)
    code = await _booking_code(db, morning)

    answer = await client.post(
        f"/api/v1/locations/{LOCATION}/checkins",
        json={"code": code, "print": "drucker-a"},
        headers={"Authorization": f"Bearer {office.clerk}"},
    )

    assert answer.json()["print"]["printer"] == "drucker-a"
    assert [j.printer_id for j in await _jobs(db)] == ["drucker-a"]
