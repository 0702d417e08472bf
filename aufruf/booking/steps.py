"""The booking site's steps and what has been chosen so far, as query parameters.

Every step of the flow is a GET URL whose query says what was chosen before it, so the back
button works and a link can be shared: `/day?authority=buergeramt&service=reisepass&service=
reisepass&location=buergeramt-mitte` is the day step for two passports at Mitte. A service
named twice counts twice, as in the API. Values that cannot be read are dropped, so a damaged
link leads back to the step that needs them, never to an error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from urllib.parse import urlencode

# (name, path); the step number is the position + 1
STEPS: tuple[tuple[str, str], ...] = (
    ("authority", "/"),
    ("services", "/services"),
    ("location", "/location"),
    ("day", "/day"),
    ("time", "/time"),
    ("details", "/details"),
)
STEP_COUNT = len(STEPS)
MAX_SERVICES = 20  # units in one appointment, as the API allows
_SLUG_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")


def is_slug(value: str) -> bool:
    return 0 < len(value) <= 64 and set(value) <= _SLUG_CHARS


@dataclass(frozen=True)
class Choice:
    """What the citizen has chosen so far; empty fields are not chosen yet."""

    authority: str = ""
    services: tuple[str, ...] = ()  # one entry per unit, sorted: two passports = twice
    location: str = ""
    day: date | None = None
    start: datetime | None = None

    @property
    def quantities(self) -> dict[str, int]:
        counted: dict[str, int] = {}
        for service_id in self.services:
            counted[service_id] = counted.get(service_id, 0) + 1
        return counted

    def params(self, upto: str) -> list[tuple[str, str]]:
        """The query pairs that lead to step `upto` (what the steps before it chose)."""
        names = [name for name, _ in STEPS]
        wanted = names[: names.index(upto)]
        pairs: list[tuple[str, str]] = []
        if "authority" in wanted and self.authority:
            pairs.append(("authority", self.authority))
        if "services" in wanted:
            pairs.extend(("service", s) for s in self.services)
        if "location" in wanted and self.location:
            pairs.append(("location", self.location))
        if "day" in wanted and self.day is not None:
            pairs.append(("day", self.day.isoformat()))
        if "time" in wanted and self.start is not None:
            pairs.append(("start", self.start.isoformat()))
        return pairs

    def url(self, step: str, **extra: str) -> str:
        """The URL of `step` with what was chosen before it."""
        path = dict(STEPS)[step]
        pairs = self.params(step) + [(k, v) for k, v in extra.items() if v]
        return f"{path}?{urlencode(pairs)}" if pairs else path

    def with_(self, **changes: object) -> Choice:
        return replace(self, **changes)


def _date(text: str | None) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def parse_instant(text: str | None) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text) if text else None
    except ValueError:
        return None
    return moment if moment is not None and moment.tzinfo is not None else None


def choice_from(single: Mapping[str, str], services: Sequence[str]) -> Choice:
    """The choice in a query (`single`: the first value of each name; `services`: every
    `service` value). Unreadable values are left out."""
    authority = single.get("authority") or ""
    location = single.get("location") or ""
    units = sorted(s for s in services if is_slug(s))[:MAX_SERVICES]
    return Choice(
        authority=authority if is_slug(authority) else "",
        services=tuple(units),
        location=location if is_slug(location) else "",
        day=_date(single.get("day")),
        start=parse_instant(single.get("start")),
    )


def step_number(step: str) -> int:
    return [name for name, _ in STEPS].index(step) + 1
