"""iCalendar files for appointments (RFC 5545): one stable UID per appointment, the local
times with their VTIMEZONE, SEQUENCE raised with every change."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event, vCalAddress

PRODID = "-//aufruf//Terminvergabe//DE"


@dataclass(frozen=True)
class CalendarEntry:
    uid: str
    sequence: int
    start: datetime
    end: datetime
    timezone: str
    summary: str
    location: str
    description: str
    stamp: datetime
    cancelled: bool = False
    organizer: str | None = None  # an e-mail address (REQUEST and CANCEL need one)
    attendee: str | None = None  # the citizen's address, told not to answer (RSVP=FALSE)
    attendee_name: str | None = None


def appointment_uid(appointment_id: int, domain: str) -> str:
    return f"appointment-{appointment_id}@{domain}"


def calendar_file(entry: CalendarEntry, method: str = "PUBLISH") -> bytes:
    """The .ics bytes of one appointment for the given METHOD (PUBLISH, REQUEST, CANCEL)."""
    zone = ZoneInfo(entry.timezone)
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("method", method)
    event = Event()
    event.add("uid", entry.uid)
    event.add("sequence", entry.sequence)
    event.add("dtstamp", entry.stamp)
    event.add("dtstart", entry.start.astimezone(zone))
    event.add("dtend", entry.end.astimezone(zone))
    event.add("summary", entry.summary)
    event.add("location", entry.location)
    event.add("description", entry.description)
    event.add("status", "CANCELLED" if entry.cancelled else "CONFIRMED")
    if entry.organizer:
        event.add("organizer", vCalAddress(f"mailto:{entry.organizer}"))
    if entry.attendee:
        attendee = vCalAddress(f"mailto:{entry.attendee}")
        attendee.params["RSVP"] = "FALSE"
        attendee.params["ROLE"] = "REQ-PARTICIPANT"
        if entry.attendee_name:
            attendee.params["CN"] = entry.attendee_name
        event.add("attendee", attendee)
    calendar.add_component(event)
    calendar.add_missing_timezones()
    return calendar.to_ical()
