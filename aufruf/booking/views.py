"""What the booking pages show, read through the booking and offices services and formatted
for the page's language: an appointment, a two-week calendar, free times, the QR code."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import qrcode
import qrcode.image.svg
from babel.dates import format_date, format_skeleton, format_time
from markupsafe import Markup, escape
from sqlalchemy.ext.asyncio import AsyncSession

from aufruf.booking import service
from aufruf.booking.logic import LocationRules
from aufruf.booking.model import Appointment
from aufruf.db import pick_text
from aufruf.offices import service as offices
from aufruf.web.i18n import gettext, ngettext

NEAREST_TIMES = 6


def day_text(day: date, lang: str) -> str:
    return format_date(day, format="full", locale=lang)


def short_day_text(day: date, lang: str) -> str:
    return format_skeleton("MMMEd", day, locale=lang)


def time_text(moment: datetime, zone: ZoneInfo, lang: str) -> str:
    return format_time(moment.astimezone(zone).time(), format="short", locale=lang)


def qr_svg(text: str, label: str) -> Markup:
    """An inline SVG QR code of `text`, scalable, announced to screen readers as `label`."""
    image = qrcode.make(
        text,
        image_factory=qrcode.image.svg.SvgPathImage,
        border=4,
        error_correction=qrcode.constants.ERROR_CORRECT_M,
    )
    svg = image.to_string(encoding="unicode")
    svg = re.sub(r'^<svg width="[^"]*" height="[^"]*"', "<svg", svg)
    svg = svg.replace(
        "<svg",
        f'<svg class="qr-code" role="img" aria-label="{escape(label)}" '
        'shape-rendering="crispEdges"',
        1,
    )
    return Markup(svg)


@dataclass(frozen=True)
class AppointmentView:
    code: str
    status: str
    date: str
    time: str
    end_time: str
    start_iso: str
    place: str
    address: str
    note: str
    services: list[str]
    bring: list[str]
    notes: list[str]
    pending_until: str
    is_active: bool
    is_upcoming: bool


async def appointment_view(
    session: AsyncSession, appointment: Appointment, lang: str, now: datetime
) -> AppointmentView:
    location = await offices.get_location(session, appointment.location_id)
    zone = ZoneInfo(location.timezone if location else "Europe/Berlin")
    need = await service.services_of(session, appointment.id)
    info = {s.id: s for s in await offices.list_services(session, lang)}
    names = [
        (f"{q} × " if q > 1 else "") + (info[s].name if s in info else s)
        for s, q in sorted(need.items())
    ]
    start = appointment.start_at.astimezone(zone)
    return AppointmentView(
        code=appointment.code,
        status=appointment.status,
        date=day_text(start.date(), lang),
        time=time_text(start, zone, lang),
        end_time=time_text(appointment.end_at, zone, lang),
        start_iso=start.isoformat(),
        place=pick_text(location.name, lang) if location else "",
        address=location.address if location else "",
        note=pick_text(location.note, lang) if location else "",
        services=names,
        bring=[info[s].bring for s in sorted(need) if s in info and info[s].bring],
        notes=[info[s].note for s in sorted(need) if s in info and info[s].note],
        pending_until=time_text(appointment.pending_until, zone, lang)
        if appointment.pending_until
        else "",
        is_active=appointment.status in ("pending", "confirmed"),
        is_upcoming=appointment.end_at > now,
    )


@dataclass(frozen=True)
class CalendarDay:
    date: date
    label: str  # "Di., 24. Nov."
    full: str  # "Dienstag, 24. November 2026"
    state: str  # "free", "full" (no free time), "closed", "outside" (before today, after horizon)
    free: int
    note: str  # "12 freie Zeiten", "keine freien Zeiten", "geschlossen"
    url: str


def calendar(
    days: list[service.Day],
    rules: LocationRules,
    lang: str,
    link: Callable[[date], str],
) -> list[list[CalendarDay]]:
    """The bookable days as weeks from Monday to Sunday; every day is shown, days without a
    free time marked as closed or fully booked, not left out."""
    if not days:
        return []
    by_date = {d.date: d for d in days}
    first = days[0].date - timedelta(days=days[0].date.weekday())
    last = days[-1].date + timedelta(days=6 - days[-1].date.weekday())
    weeks: list[list[CalendarDay]] = []
    day = first
    while day <= last:
        if day.weekday() == 0:
            weeks.append([])
        weeks[-1].append(_calendar_day(day, by_date.get(day), rules, lang, link))
        day += timedelta(days=1)
    return weeks


def _calendar_day(
    day: date,
    found: service.Day | None,
    rules: LocationRules,
    lang: str,
    link: Callable[[date], str],
) -> CalendarDay:
    free = len(found.starts) if found else 0
    if found is None:
        state, note = "outside", ""
    elif free:
        state = "free"
        note = ngettext(lang, "%(num)s free time", "%(num)s free times", free) % {"num": free}
    elif day in rules.closed_days or not rules.weekly.get(day.weekday()):
        state, note = "closed", gettext(lang, "closed")
    else:
        state, note = "full", gettext(lang, "no free times")
    return CalendarDay(
        date=day,
        label=short_day_text(day, lang),
        full=day_text(day, lang),
        state=state,
        free=free,
        note=note,
        url=link(day) if free else "",
    )


@dataclass(frozen=True)
class FreeTime:
    start: datetime
    iso: str
    text: str  # "09:30"
    day: str  # "Dienstag, 24. November 2026", for times offered across days


def free_times(day: service.Day, zone: ZoneInfo, lang: str) -> list[FreeTime]:
    return [
        FreeTime(s, iso, time_text(s, zone, lang), day_text(day.date, lang))
        for s, iso in zip(day.starts, day.texts, strict=True)
    ]


def nearest_times(
    days: list[service.Day], wanted: datetime, zone: ZoneInfo, lang: str
) -> list[FreeTime]:
    """The free times closest to `wanted` (before or after it), in time order."""
    every = [t for d in days for t in free_times(d, zone, lang)]
    closest = sorted(every, key=lambda t: (abs(t.start - wanted), t.start))[:NEAREST_TIMES]
    return sorted(closest, key=lambda t: t.start)


def next_free_day(days: list[service.Day], lang: str) -> str:
    for day in days:
        if day.starts:
            return day_text(day.date, lang)
    return ""
