"""The office directory file into the database and back.

`apply_directory` makes the database hold exactly the directory of a file, in the caller's
transaction: rows are upserted by id; rows the file no longer names are deactivated, never
deleted, because bookings, tickets and events refer to them (ARCHITECTURE.md rule 4). Opening
windows, closures and counter services of the file's locations are replaced wholesale. A
closure that is new cancels the appointments it covers, with its reason.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from aufruf.booking.service import bump_versions, cancel_for_closure
from aufruf.db import Base, Database
from aufruf.offices import config
from aufruf.offices import model as m

KINDS = (
    "authority",
    "service_group",
    "service",
    "location",
    "location_service",
    "counter",
    "printer",
    "kiosk",
)


@dataclass
class ImportReport:
    """What an import changed: rows per kind, closures added, appointments cancelled."""

    created: Tally[str] = field(default_factory=Tally)
    updated: Tally[str] = field(default_factory=Tally)
    deactivated: Tally[str] = field(default_factory=Tally)
    new_closures: int = 0
    cancelled_appointments: int = 0

    @property
    def changed(self) -> bool:
        return bool(
            self.created.total() or self.updated.total() or self.deactivated.total()
        ) or bool(self.new_closures or self.cancelled_appointments)

    def lines(self) -> list[str]:
        """One line per kind that changed, for the command line."""
        out = []
        for kind in KINDS:
            counts = [
                f"{self.created[kind]} created" if self.created[kind] else "",
                f"{self.updated[kind]} updated" if self.updated[kind] else "",
                f"{self.deactivated[kind]} deactivated" if self.deactivated[kind] else "",
            ]
            if any(counts):
                out.append(f"{kind}: " + ", ".join(c for c in counts if c))
        if self.new_closures:
            out.append(f"closures: {self.new_closures} new")
        if self.cancelled_appointments:
            out.append(f"appointments cancelled for closures: {self.cancelled_appointments}")
        return out or ["no changes"]

    def __str__(self) -> str:
        return "\n".join(self.lines())


# --- file <-> database ------------------------------------------------------------------------


async def import_file(db: Database, path: Path, now: datetime) -> ImportReport:
    """Validate the file (DirectoryError, nothing changed) and apply it in one transaction."""
    directory = config.load_directory(path)
    async with db.write() as session:
        return await apply_directory(session, directory, now)


async def export_text(db: Database) -> str:
    """The active directory as TOML text, in the format `import_file` reads."""
    async with db.read() as session:
        return config.dump_directory(await read_directory(session))


# --- apply --------------------------------------------------------------------------------------


async def apply_directory(
    session: AsyncSession, directory: config.Directory, now: datetime
) -> ImportReport:
    """Make the database hold `directory` (already validated), in the caller's transaction."""
    report = ImportReport()
    sync = _Sync(session, report)
    await sync.rows(
        m.Authority,
        "authority",
        {a.id: {"name": a.name, "position": i} for i, a in enumerate(directory.authorities)},
    )
    await sync.rows(
        m.ServiceGroup,
        "service_group",
        {g.id: {"letter": g.letter, "name": g.name} for g in directory.service_groups},
    )
    await sync.rows(
        m.Service,
        "service",
        {s.id: _service_values(s, i) for i, s in enumerate(directory.services)},
    )
    locations = directory.locations
    await sync.rows(
        m.Location,
        "location",
        {loc.id: _location_values(loc, i) for i, loc in enumerate(locations)},
    )
    await sync.rows(
        m.LocationService,
        "location_service",
        {
            (loc.id, ls.service): {
                "duration_minutes": ls.duration_minutes,
                "daily_cap": ls.daily_cap,
                "parallel_cap": ls.parallel_cap,
            }
            for loc in locations
            for ls in loc.services
        },
    )
    await sync.rows(
        m.Counter,
        "counter",
        {
            c.id: {"location_id": loc.id, "name": c.name, "position": i}
            for loc in locations
            for i, c in enumerate(loc.counters)
        },
    )
    await sync.rows(
        m.Printer,
        "printer",
        {p.id: _printer_values(p, loc.id) for loc in locations for p in loc.printers},
    )
    await sync.rows(
        m.Kiosk,
        "kiosk",
        {
            k.id: {"location_id": loc.id, "name": k.name, "printer_id": k.printer}
            for loc in locations
            for k in loc.kiosks
        },
    )
    await _replace_counter_services(session, locations)
    await _replace_hours(session, locations)
    new_closures = await _replace_closures(session, locations)
    report.new_closures = len(new_closures)
    report.cancelled_appointments = await _cancel_for_closures(
        session, locations, new_closures, now
    )
    # every location, also those just switched off, so no instance keeps serving old answers
    await bump_versions(session, await session.scalars(select(m.Location.id)), rules=True)
    return report


class _Sync:
    """Upserts rows of one kind by primary key; rows not named are deactivated."""

    def __init__(self, session: AsyncSession, report: ImportReport) -> None:
        self.session = session
        self.report = report

    async def rows(self, model: type[Base], kind: str, wanted: dict[Any, dict[str, Any]]) -> None:
        keys = model.__mapper__.primary_key
        existing = {
            tuple(getattr(row, c.key) for c in keys): row
            for row in await self.session.scalars(select(model))
        }
        for key, values in wanted.items():
            key_tuple = key if isinstance(key, tuple) else (key,)
            row = existing.pop(key_tuple, None)
            if row is None:
                ids = {c.key: v for c, v in zip(keys, key_tuple, strict=True)}
                self.session.add(model(**ids, **values, active=True))
                self.report.created[kind] += 1
                continue
            values = {**values, "active": True}
            changed = {k: v for k, v in values.items() if getattr(row, k) != v}
            for name, value in changed.items():
                setattr(row, name, value)
            if changed:
                self.report.updated[kind] += 1
        for row in existing.values():
            if row.active:
                row.active = False
                self.report.deactivated[kind] += 1
        await self.session.flush()


def _service_values(service: config.Service, position: int) -> dict[str, Any]:
    return {
        "authority_id": service.authority,
        "group_id": service.group,
        "name": service.name,
        "bring": service.bring,
        "note": service.note,
        "duration_minutes": service.duration_minutes,
        "max_quantity": service.max_quantity,
        "position": position,
    }


def _location_values(location: config.Location, position: int) -> dict[str, Any]:
    return {
        "authority_id": location.authority,
        "name": location.name,
        "note": location.note,
        "address": location.address,
        "timezone": location.timezone,
        "holiday_state": location.holiday_state or None,
        "slot_minutes": location.slot_minutes,
        "lead_minutes": location.lead_minutes,
        "horizon_days": location.horizon_days,
        "cancel_holdback_minutes": location.cancel_holdback_minutes,
        "double_opt_in": location.double_opt_in,
        "queue": msgspec.to_builtins(location.queue),
        "position": position,
    }


def _printer_values(printer: config.Printer, location_id: str) -> dict[str, Any]:
    return {
        "location_id": location_id,
        "name": printer.name,
        "paper_width_mm": printer.paper_width_mm,
        "code_page": printer.code_page,
        "qr_mode": printer.qr_mode,
        "image_impl": printer.image_impl,
        "connection": printer.connection,
        "target": printer.target,
        "print_deadline_seconds": printer.print_deadline_seconds,
    }


async def _replace_counter_services(
    session: AsyncSession, locations: tuple[config.Location, ...]
) -> None:
    counters = [c for loc in locations for c in loc.counters]
    ids = [c.id for c in counters]
    if ids:
        await session.execute(delete(m.CounterService).where(m.CounterService.counter_id.in_(ids)))
    session.add_all(
        m.CounterService(counter_id=c.id, service_id=s) for c in counters for s in c.services or ()
    )
    await session.flush()


async def _replace_hours(session: AsyncSession, locations: tuple[config.Location, ...]) -> None:
    ids = [loc.id for loc in locations]
    if ids:
        await session.execute(delete(m.OpeningWindow).where(m.OpeningWindow.location_id.in_(ids)))
    session.add_all(
        m.OpeningWindow(
            location_id=loc.id,
            weekday=config.WEEKDAYS.index(day),
            opens=window.opens,
            closes=window.closes,
            appointment_counters=window.appointment_counters,
        )
        for loc in locations
        for hours in loc.hours
        for day in hours.days
        for window in hours.windows
    )
    await session.flush()


ClosureKey = tuple[str, date, date, tuple[tuple[str, str], ...]]


def _closure_key(location_id: str, first: date, last: date, reason: dict[str, str]) -> ClosureKey:
    return (location_id, first, last, tuple(sorted(reason.items())))


async def _replace_closures(
    session: AsyncSession, locations: tuple[config.Location, ...]
) -> list[tuple[str, config.Closure]]:
    """Store the closures of the file's locations; returns those that were not stored yet."""
    ids = [loc.id for loc in locations]
    if not ids:
        return []
    stored = await session.scalars(select(m.Closure).where(m.Closure.location_id.in_(ids)))
    known = {_closure_key(c.location_id, c.first_day, c.last_day, c.reason or {}) for c in stored}
    await session.execute(delete(m.Closure).where(m.Closure.location_id.in_(ids)))
    new = []
    for loc in locations:
        for closure in loc.closures:
            key = _closure_key(loc.id, closure.first_day, closure.last_day, closure.reason)
            if key not in known:
                new.append((loc.id, closure))
            session.add(
                m.Closure(
                    location_id=loc.id,
                    first_day=closure.first_day,
                    last_day=closure.last_day,
                    reason=closure.reason,
                )
            )
    await session.flush()
    return new


async def _cancel_for_closures(
    session: AsyncSession,
    locations: tuple[config.Location, ...],
    new_closures: list[tuple[str, config.Closure]],
    now: datetime,
) -> int:
    zones = {loc.id: ZoneInfo(loc.timezone) for loc in locations}
    cancelled = 0
    for location_id, closure in new_closures:
        if closure.last_day < now.astimezone(zones[location_id]).date():
            continue  # a closure in the past covers nothing that could still happen
        cancelled += await cancel_for_closure(
            session, location_id, closure.first_day, closure.last_day, closure.reason, now
        )
    return cancelled


# --- read ---------------------------------------------------------------------------------------


async def read_directory(session: AsyncSession) -> config.Directory:
    """The active directory, in the normal form `config.parse_directory` returns."""
    authorities = await session.scalars(
        select(m.Authority).where(m.Authority.active).order_by(m.Authority.position, m.Authority.id)
    )
    groups = await session.scalars(
        select(m.ServiceGroup)
        .where(m.ServiceGroup.active)
        .order_by(m.ServiceGroup.letter, m.ServiceGroup.id)
    )
    services = list(
        await session.scalars(
            select(m.Service).where(m.Service.active).order_by(m.Service.position, m.Service.id)
        )
    )
    locations = await session.scalars(
        select(m.Location).where(m.Location.active).order_by(m.Location.position, m.Location.id)
    )
    parts = await _LocationParts.load(session, [s.id for s in services])
    return config.Directory(
        authorities=tuple(config.Authority(id=a.id, name=a.name) for a in authorities),
        service_groups=tuple(
            config.ServiceGroup(id=g.id, letter=g.letter, name=g.name) for g in groups
        ),
        services=tuple(_service_of(s) for s in services),
        locations=tuple(parts.location(loc) for loc in locations),
    )


def _service_of(row: m.Service) -> config.Service:
    return config.Service(
        id=row.id,
        authority=row.authority_id,
        group=row.group_id,
        name=row.name,
        bring=row.bring or {},
        note=row.note or {},
        duration_minutes=row.duration_minutes,
        max_quantity=row.max_quantity,
    )


@dataclass
class _LocationParts:
    """Everything below the active locations, grouped by location id."""

    offered: dict[str, list[config.LocationService]]
    windows: dict[str, dict[config.Weekday, list[config.Window]]]
    closures: dict[str, list[config.Closure]]
    counters: dict[str, list[tuple[m.Counter, list[str]]]]
    printers: dict[str, list[m.Printer]]
    kiosks: dict[str, list[m.Kiosk]]

    @classmethod
    async def load(cls, session: AsyncSession, service_order: list[str]) -> _LocationParts:
        order = {service_id: i for i, service_id in enumerate(service_order)}
        offered: dict[str, list[config.LocationService]] = defaultdict(list)
        for row in await session.scalars(select(m.LocationService).where(m.LocationService.active)):
            if row.service_id in order:
                offered[row.location_id].append(
                    config.LocationService(
                        service=row.service_id,
                        duration_minutes=row.duration_minutes,
                        daily_cap=row.daily_cap,
                        parallel_cap=row.parallel_cap,
                    )
                )
        for items in offered.values():
            items.sort(key=lambda ls: order[ls.service])
        windows: dict[str, dict[config.Weekday, list[config.Window]]] = defaultdict(dict)
        for w in await session.scalars(select(m.OpeningWindow)):
            day = config.WEEKDAYS[w.weekday]
            windows[w.location_id].setdefault(day, []).append(
                config.Window(
                    opens=w.opens, closes=w.closes, appointment_counters=w.appointment_counters
                )
            )
        closures: dict[str, list[config.Closure]] = defaultdict(list)
        query = select(m.Closure).order_by(m.Closure.first_day, m.Closure.last_day, m.Closure.id)
        for c in await session.scalars(query):
            closures[c.location_id].append(
                config.Closure(first_day=c.first_day, last_day=c.last_day, reason=c.reason or {})
            )
        served: dict[str, list[str]] = defaultdict(list)
        for cs in await session.scalars(select(m.CounterService)):
            served[cs.counter_id].append(cs.service_id)
        counters: dict[str, list[tuple[m.Counter, list[str]]]] = defaultdict(list)
        query = select(m.Counter).where(m.Counter.active).order_by(m.Counter.position, m.Counter.id)
        for counter in await session.scalars(query):
            counters[counter.location_id].append((counter, served[counter.id]))
        printers: dict[str, list[m.Printer]] = defaultdict(list)
        for p in await session.scalars(
            select(m.Printer).where(m.Printer.active).order_by(m.Printer.id)
        ):
            printers[p.location_id].append(p)
        kiosks: dict[str, list[m.Kiosk]] = defaultdict(list)
        for k in await session.scalars(select(m.Kiosk).where(m.Kiosk.active).order_by(m.Kiosk.id)):
            kiosks[k.location_id].append(k)
        return cls(offered, windows, closures, counters, printers, kiosks)

    def location(self, row: m.Location) -> config.Location:
        offered = self.offered[row.id]
        offered_order = {ls.service: i for i, ls in enumerate(offered)}
        printer_ids = {p.id for p in self.printers[row.id]}
        return config.Location(
            id=row.id,
            authority=row.authority_id,
            name=row.name,
            note=row.note or {},
            address=row.address,
            timezone=row.timezone,
            holiday_state=row.holiday_state or "",
            slot_minutes=row.slot_minutes,
            lead_minutes=row.lead_minutes,
            horizon_days=row.horizon_days,
            cancel_holdback_minutes=row.cancel_holdback_minutes,
            double_opt_in=row.double_opt_in,
            queue=msgspec.convert(row.queue or {}, config.Queue),
            services=tuple(offered),
            hours=config.group_hours(self.windows[row.id]),
            closures=tuple(self.closures[row.id]),
            counters=tuple(
                config.Counter(
                    id=counter.id,
                    name=counter.name,
                    services=tuple(
                        sorted(
                            (s for s in services if s in offered_order),
                            key=lambda s: offered_order[s],
                        )
                    ),
                )
                for counter, services in self.counters[row.id]
            ),
            printers=tuple(
                config.Printer(
                    id=p.id,
                    name=p.name,
                    paper_width_mm=p.paper_width_mm,
                    code_page=p.code_page,
                    qr_mode=p.qr_mode,
                    image_impl=p.image_impl,
                    connection=p.connection,
                    target=p.target,
                    print_deadline_seconds=p.print_deadline_seconds,
                )
                for p in self.printers[row.id]
            ),
            kiosks=tuple(
                config.Kiosk(
                    id=k.id,
                    name=k.name,
                    printer=k.printer_id if k.printer_id in printer_ids else None,
                )
                for k in self.kiosks[row.id]
            ),
        )
