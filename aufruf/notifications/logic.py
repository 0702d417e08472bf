"""Decisions of the outbox, without I/O: when to try again, when to remind."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

FIRST_RETRY = timedelta(minutes=1)
LONGEST_RETRY = timedelta(hours=1)


def retry_delay(attempts: int) -> timedelta:
    """How long to wait after the `attempts`-th failed try: 1, 2, 4, 8 … minutes, at most
    an hour (a dead mail server delays mail; it never loses it)."""
    if attempts < 1:
        return FIRST_RETRY
    return min(LONGEST_RETRY, FIRST_RETRY * 2 ** min(attempts - 1, 16))


@dataclass(frozen=True)
class ReminderRule:
    """Remind `days_before` days before the appointment's local date at `at` local time."""

    days_before: int = 1
    at: time = time(18, 0)


DEFAULT_REMINDER = ReminderRule()

_RULE = re.compile(r"^\s*-(\d+)d\s+(\d{1,2}):(\d{2})\s*$")


def parse_reminder_rule(text: str | None) -> ReminderRule | None:
    """`AUFRUF_REMINDER`: "-1d 18:00" (default; the day before at 18:00), "-2d 09:30", or
    "off" for no reminders. Raises ValueError for anything else."""
    if text is None or not text.strip():
        return DEFAULT_REMINDER
    if text.strip().lower() in ("off", "none", "0"):
        return None
    match = _RULE.match(text)
    if match is None:
        raise ValueError(f"AUFRUF_REMINDER must look like '-1d 18:00' or 'off', not {text!r}")
    days, hour, minute = (int(g) for g in match.groups())
    if hour > 23 or minute > 59:
        raise ValueError(f"AUFRUF_REMINDER has no valid time of day: {text!r}")
    return ReminderRule(days_before=days, at=time(hour, minute))


def reminder_at(rule: ReminderRule, start: datetime, zone: ZoneInfo) -> datetime:
    """The instant the reminder of an appointment starting at `start` is due, by the
    location's local calendar (correct across daylight-saving changes)."""
    day = start.astimezone(zone).date() - timedelta(days=rule.days_before)
    return datetime.combine(day, rule.at, tzinfo=zone)


def reminder_due(
    rule: ReminderRule, start: datetime, booked_at: datetime, zone: ZoneInfo, now: datetime
) -> bool:
    """A reminder is sent once its moment has come and before the appointment starts; not
    when the booking was made after that moment (its confirmation is fresh)."""
    moment = reminder_at(rule, start, zone)
    return booked_at < moment <= now < start
