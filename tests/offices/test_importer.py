"""The directory file in the database: applied, read back, changed, never deleting history."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import msgspec
import pytest
from sqlalchemy import func, select

from aufruf.booking.model import Appointment
from aufruf.booking.service import BookingRequest, book
from aufruf.db import Database
from aufruf.notifications.model import OutboxMessage
from aufruf.offices import importer, model
from aufruf.offices.config import (
    DEMO_FILE,
    Closure,
    Directory,
    DirectoryError,
    load_directory,
    parse_directory,
)
from aufruf.offices.importer import (
    ImportReport,
    apply_directory,
    export_text,
    import_file,
    read_directory,
)

NOW = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)  # Monday, 07:00 in Hagen


async def applied(db: Database, directory: Directory) -> ImportReport:
    async with db.write() as session:
        return await apply_directory(session, directory, NOW)


async def stored(db: Database) -> Directory:
    async with db.read() as session:
        return await read_directory(session)


def without_location(directory: Directory, location_id: str) -> Directory:
    return msgspec.structs.replace(
        directory, locations=tuple(loc for loc in directory.locations if loc.id != location_id)
    )


def with_location(directory: Directory, location_id: str, **changes: object) -> Directory:
    return msgspec.structs.replace(
        directory,
        locations=tuple(
            msgspec.structs.replace(loc, **changes) if loc.id == location_id else loc
            for loc in directory.locations
        ),
    )


async def test_demo_applied_to_an_empty_database_reads_back_equal(db: Database) -> None:
    demo = load_directory(DEMO_FILE)

    report = await applied(db, demo)

    assert await stored(db) == demo
    assert report.created["location"] == 6
    assert report.created["counter"] == sum(len(loc.counters) for loc in demo.locations)
    assert report.deactivated.total() == 0


async def test_applying_the_same_file_twice_changes_nothing(db: Database) -> None:
    demo = load_directory(DEMO_FILE)
    await applied(db, demo)

    again = await applied(db, demo)

    assert again.created.total() == 0
    assert again.updated.total() == 0
    assert again.deactivated.total() == 0
    assert again.new_closures == 0
    assert not again.changed
    assert await stored(db) == demo


async def test_a_location_left_out_of_the_file_is_deactivated_not_deleted(db: Database) -> None:
    demo = load_directory(DEMO_FILE)
    await applied(db, demo)

    report = await applied(db, without_location(demo, "buergeramt-haspe"))

    assert report.deactivated["location"] == 1
    assert report.deactivated["counter"] == 3
    assert report.deactivated["kiosk"] == report.deactivated["printer"] == 1
    assert await stored(db) == without_location(demo, "buergeramt-haspe")
    async with db.read() as session:
        haspe = await session.get(model.Location, "buergeramt-haspe")
        counters = await session.scalar(
            select(func.count())
            .select_from(model.Counter)
            .where(model.Counter.location_id == "buergeramt-haspe")
        )
    assert haspe is not None and not haspe.active
    assert counters == 3


async def test_a_location_put_back_into_the_file_is_active_again(db: Database) -> None:
    demo = load_directory(DEMO_FILE)
    await applied(db, demo)
    await applied(db, without_location(demo, "buergeramt-haspe"))

    report = await applied(db, demo)

    assert report.created.total() == 0
    assert report.updated["kiosk"] == 1
    assert await stored(db) == demo


async def test_changed_settings_are_updated_in_place(db: Database) -> None:
    demo = load_directory(DEMO_FILE)
    await applied(db, demo)
    changed = with_location(demo, "zulassungsstelle", slot_minutes=15, holiday_state="")

    report = await applied(db, changed)

    assert report.updated["location"] == 1
    assert report.created.total() == 0
    assert await stored(db) == changed


async def test_a_new_closure_cancels_the_appointments_it_covers_once(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []

    async def cancel_for_closure(session, location_id, first_day, last_day, reason, now) -> int:
        calls.append((location_id, first_day, last_day, reason, now))
        return 2

    monkeypatch.setattr(importer, "cancel_for_closure", cancel_for_closure)
    demo = load_directory(DEMO_FILE)
    await applied(db, demo)
    calls.clear()
    water = Closure(
        first_day=date(2026, 11, 26),
        last_day=date(2026, 11, 27),
        reason={"de": "Wasserschaden", "en": "Water damage"},
    )
    boele = next(loc for loc in demo.locations if loc.id == "buergeramt-boele")
    closed = with_location(demo, "buergeramt-boele", closures=(water, *boele.closures))

    report = await applied(db, closed)
    again = await applied(db, closed)

    assert calls == [("buergeramt-boele", water.first_day, water.last_day, water.reason, NOW)]
    assert (report.new_closures, report.cancelled_appointments) == (1, 2)
    assert (again.new_closures, again.cancelled_appointments) == (0, 0)


async def test_a_new_closure_cancels_a_booked_appointment_with_its_reason(db: Database) -> None:
    demo = load_directory(DEMO_FILE)
    await applied(db, demo)
    async with db.write() as session:
        booked = await book(
            session,
            "test-secret-key-0123456789-abcdefghijklmnop",
            NOW,
            BookingRequest(
                location="buergeramt-boele",
                services=["meldebescheinigung"],
                start=datetime(2026, 11, 26, 9, 0, tzinfo=ZoneInfo("Europe/Berlin")),
                name="Erika Mustermann",
                email="erika@example.org",
            ),
        )
    water = Closure(
        first_day=date(2026, 11, 26),
        last_day=date(2026, 11, 26),
        reason={"de": "Wasserschaden", "en": "Water damage"},
    )
    boele = next(loc for loc in demo.locations if loc.id == "buergeramt-boele")

    report = await applied(
        db, with_location(demo, "buergeramt-boele", closures=(water, *boele.closures))
    )

    assert report.cancelled_appointments == 1
    async with db.read() as session:
        appointment = await session.get(Appointment, booked.appointment.id)
    assert appointment is not None
    assert (appointment.status, appointment.cancel_reason) == ("cancelled", "Wasserschaden")
    async with db.read() as session:
        notices = (
            await session.scalars(
                select(OutboxMessage).where(OutboxMessage.kind == "cancelled_by_office")
            )
        ).all()
    assert [(n.appointment_id, n.details["reason"]) for n in notices] == [
        (booked.appointment.id, "Wasserschaden")
    ]


async def test_a_closure_already_past_cancels_nothing(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []

    async def cancel_for_closure(*args) -> int:
        calls.append(args)
        return 0

    monkeypatch.setattr(importer, "cancel_for_closure", cancel_for_closure)
    past = Closure(first_day=date(2026, 11, 2), last_day=date(2026, 11, 2))
    demo = load_directory(DEMO_FILE)
    mitte = demo.locations[0]

    report = await applied(db, with_location(demo, mitte.id, closures=(past, *mitte.closures)))

    assert report.new_closures == 1 + sum(len(loc.closures) for loc in demo.locations)
    assert all(call[1] != past.first_day for call in calls)


async def test_import_file_changes_nothing_when_the_file_is_invalid(
    db: Database, tmp_path: Path
) -> None:
    path = tmp_path / "offices.toml"
    path.write_text(
        DEMO_FILE.read_text(encoding="utf-8").replace("slot_minutes = 5", "slot_minutes = 6"),
        encoding="utf-8",
    )

    with pytest.raises(DirectoryError) as caught:
        await import_file(db, path, NOW)

    assert "locations[5].slot_minutes: must be 5, 10 or 15" in caught.value.errors[0]
    assert await stored(db) == Directory()


async def test_export_reads_back_as_the_imported_file(db: Database) -> None:
    await import_file(db, DEMO_FILE, NOW)

    text = await export_text(db)

    assert parse_directory(text) == load_directory(DEMO_FILE)


async def test_the_report_reads_as_one_line_per_kind(db: Database) -> None:
    report = await applied(db, load_directory(DEMO_FILE))

    assert str(report).splitlines()[:2] == ["authority: 3 created", "service_group: 5 created"]
    assert str(await applied(db, load_directory(DEMO_FILE))) == "no changes"


async def test_a_printers_deadline_is_imported_changed_in_place_and_exported(db: Database) -> None:
    demo = load_directory(DEMO_FILE)
    await applied(db, demo)
    [mitte] = [loc for loc in demo.locations if loc.printers][:1]
    printer = msgspec.structs.replace(mitte.printers[0], print_deadline_seconds=45)
    changed = with_location(demo, mitte.id, printers=(printer, *mitte.printers[1:]))

    report = await applied(db, changed)

    assert report.updated["printer"] == 1
    async with db.read() as session:
        row = await session.get(model.Printer, printer.id)
    assert row.print_deadline_seconds == 45
    assert parse_directory(await export_text(db)) == changed
