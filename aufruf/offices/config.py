"""The office directory as a TOML file: parse, validate, write back. Pure: no database.

A city keeps its whole directory in one file (`aufruf offices import FILE.toml`,
`aufruf offices export`; `demo.toml` beside this module is a complete example). Texts a
citizen sees are tables of translations with German required: `{ de = "…", en = "…" }`.
Ids are slugs (lowercase letters, digits, "-" and "_"; at most 64 characters) and stay
stable: bookings, tickets and statistics refer to them.

    holiday_state = "NW"          # state whose public holidays close the locations (a
                                  # holidays.Germany subdivision); absent or "" for none

    [[authorities]]
    id = "buergeramt"
    name = { de = "Bürgeramt", en = "Citizens' Office" }

    [[service_groups]]            # services sharing a ticket letter: A001, A002, …
    id = "ausweise"
    letter = "A"                  # one capital letter A–Z
    name = { de = "Ausweise und Pässe", en = "ID cards and passports" }

    [[services]]
    id = "personalausweis"
    authority = "buergeramt"
    group = "ausweise"
    name = { de = "Personalausweis beantragen", en = "Apply for an ID card" }
    bring = { de = "…", en = "…" }   # optional: what to bring
    note = { de = "…", en = "…" }    # optional
    duration_minutes = 20
    max_quantity = 5              # optional, default 1: how many in one appointment

    [[locations]]
    id = "buergeramt-mitte"
    authority = "buergeramt"
    name = { de = "Bürgeramt Mitte", en = "Citizens' Office Central" }
    note = { de = "…", en = "…" }    # optional
    address = "Rathausstraße 11, 58095 Hagen"
    timezone = "Europe/Berlin"    # optional, this default
    holiday_state = "NW"          # optional, default the top-level one; "" for none
    slot_minutes = 10             # booking grid: 5, 10 or 15 (default 10)
    lead_minutes = 120            # earliest booking this long ahead (default 120)
    horizon_days = 14             # bookable this many days ahead (default 14)
    cancel_holdback_minutes = 0   # a cancelled time is offered again after this long (0)
    double_opt_in = false         # bookings wait for a confirmation by e-mail (false)

    [[locations.services]]        # one per service offered here
    service = "personalausweis"
    duration_minutes = 25         # optional: overrides the service's duration here
    daily_cap = 40                # optional: at most this many a day
    parallel_cap = 2              # optional: at most this many starting at the same time

    [[locations.hours]]           # several entries for days with different hours
    days = ["mon", "tue", "wed", "fri"]
    windows = [                   # local times; appointment_counters: counters taking
        { opens = "08:00", closes = "12:30", appointment_counters = 3 },  # appointments,
        { opens = "13:30", closes = "15:30", appointment_counters = 2 },  # the rest serve
    ]                                                                     # walk-ins

    [[locations.closures]]        # days without appointments besides public holidays
    first_day = 2026-12-24
    last_day = 2026-12-31
    reason = { de = "Betriebsferien", en = "Closed for the holidays" }

    [[locations.counters]]        # ids unique across all locations
    id = "buergeramt-mitte-1"
    name = "Platz 1"
    services = ["personalausweis"]   # optional, default: every service of the location

    [[locations.printers]]        # ticket printers; ids unique across all locations
    id = "buergeramt-mitte-drucker"
    name = "Ticketdrucker Foyer"
    paper_width_mm = 80           # 58 or 80 (default 80)
    code_page = "CP858"           # default CP858
    qr_mode = "native"            # "native" or "image" (default native)
    image_impl = "bitImageRaster" # "bitImageRaster", "bitImageColumn" or "graphics"
    connection = "agent"          # "agent" (a printer agent fetches the jobs) or "direct"
    target = "net:10.0.0.7:9100"  # required with "direct": net:HOST[:PORT], usb:VID:PID,
                                  # serial:DEVICE, file:PATH, dummy:PATH
    print_deadline_seconds = 60   # a ticket not started printing this long after it was
                                  # queued is given up, never printed late (10-600, default 60)

    [[locations.kiosks]]          # ids unique across all locations
    id = "buergeramt-mitte-kiosk"
    name = "Kiosk Foyer"
    printer = "buergeramt-mitte-drucker"   # optional, a printer of this location

Every error names the line and the field: `offices.toml:42: locations[2].hours[0]
.windows[1].closes: must be after opens (12:00)`. All errors are collected and raised
together as one `DirectoryError`.

A parsed `Directory` is normalised so that equal directories compare equal however they
were written: service groups are ordered by letter, a location's services and each counter's
services follow the order of `[[services]]`, hours are regrouped into days with equal windows,
closures are ordered by date, printers and kiosks by id, and every location carries its
resolved `holiday_state` ("" for none).
"""

from __future__ import annotations

import re
import tomllib
from collections import Counter as Tally
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, time
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
import msgspec
import tomli_w

from aufruf.offices.toml_lines import FieldPath, TomlLines
from aufruf.web.i18n import PUBLIC_LANGUAGES

DEMO_FILE = Path(__file__).with_name("demo.toml")

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Texts = dict[str, str]

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
LETTER_RE = re.compile(r"^[A-Z]$")
_PLACEHOLDER = re.compile(r"%\((\w+)\)s")  # as in a spoken call's text
TIME_RE = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")
TARGET_RE = re.compile(
    r"^(net:[^\s:]+(:\d{1,5})?|usb:[0-9a-fA-F]{1,4}:[0-9a-fA-F]{1,4}|serial:\S+|file:.+|dummy:.+)$"
)
SLOT_GRIDS = (5, 10, 15)
HOLIDAY_STATES = frozenset(holidays.Germany.subdivisions)
NAME_MAX = 100
ADDRESS_MAX = 300


class _Struct(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    pass


class Authority(_Struct):
    id: str
    name: Texts


class ServiceGroup(_Struct):
    id: str
    letter: str
    name: Texts


class Service(_Struct, kw_only=True):
    id: str
    authority: str
    group: str
    name: Texts
    bring: Texts = {}
    note: Texts = {}
    duration_minutes: int
    max_quantity: int = 1


class LocationService(_Struct):
    service: str
    duration_minutes: int | None = None
    daily_cap: int | None = None
    parallel_cap: int | None = None


class Window(_Struct):
    opens: time
    closes: time
    appointment_counters: int


class Hours(_Struct):
    days: tuple[Weekday, ...]
    windows: tuple[Window, ...]


class Closure(_Struct):
    first_day: date
    last_day: date
    reason: Texts = {}


class Counter(_Struct):
    id: str
    name: str
    services: tuple[str, ...] | None = None  # None in a file: every service of the location


PRINT_DEADLINE_SECONDS = (10, 600)  # the least and the most a printer's deadline may be


class Printer(_Struct):
    id: str
    name: str
    paper_width_mm: Literal[58, 80] = 80
    code_page: str = "CP858"
    qr_mode: Literal["native", "image"] = "native"
    image_impl: Literal["bitImageRaster", "bitImageColumn", "graphics"] = "bitImageRaster"
    connection: Literal["agent", "direct"] = "agent"
    target: str | None = None
    print_deadline_seconds: int = 60  # a job not started this long after queueing expires


class Kiosk(_Struct):
    id: str
    name: str
    printer: str | None = None


class Queue(_Struct, kw_only=True):
    """How the live queue behaves at a location (`[locations.queue]`; every key optional)."""

    appointment_letter: Annotated[str, msgspec.Meta(pattern="^[A-Z]$")] = "T"
    checkin_early_minutes: Annotated[int, msgspec.Meta(ge=0, le=720)] = 60
    checkin_late_minutes: Annotated[int, msgspec.Meta(ge=0, le=240)] = 15
    recall_pause_seconds: Annotated[int, msgspec.Meta(ge=0, le=600)] = 30
    max_calls: Annotated[int, msgspec.Meta(ge=1, le=10)] = 3
    reactivate_minutes: Annotated[int, msgspec.Meta(ge=0, le=480)] = 30
    transfer_keeps_place: bool = True
    walk_in_cutoff_minutes: Annotated[int, msgspec.Meta(ge=0, le=480)] = 0
    # also no new walk-ins when the estimated wait would run past closing
    cutoff_by_wait: bool = False
    due_grace_minutes: Annotated[int, msgspec.Meta(ge=0, le=60)] = 2
    # unset: a due appointment always goes before walk-ins; a number: it ranks as if it had
    # arrived that many minutes before its time, so a long-waiting walk-in is not overtaken
    appointment_advantage_minutes: Annotated[int, msgspec.Meta(ge=0, le=480)] | None = None
    # the wall display's spoken call, by language, with %(number)s and %(counter)s; a language
    # not given is spoken with aufruf's own text ("Nummer A 17, bitte zu Platz 3")
    call_text: Texts = {}


class Location(_Struct, kw_only=True):
    id: str
    authority: str
    name: Texts
    note: Texts = {}
    address: str
    timezone: str = "Europe/Berlin"
    holiday_state: str | None = None  # None in a file: the top-level one; "" for none
    slot_minutes: int = 10
    lead_minutes: int = 120
    horizon_days: int = 14
    cancel_holdback_minutes: int = 0
    double_opt_in: bool = False
    queue: Queue = Queue()
    services: tuple[LocationService, ...] = ()
    hours: tuple[Hours, ...] = ()
    closures: tuple[Closure, ...] = ()
    counters: tuple[Counter, ...] = ()
    printers: tuple[Printer, ...] = ()
    kiosks: tuple[Kiosk, ...] = ()


class Directory(_Struct):
    authorities: tuple[Authority, ...] = ()
    service_groups: tuple[ServiceGroup, ...] = ()
    services: tuple[Service, ...] = ()
    locations: tuple[Location, ...] = ()


class DirectoryError(Exception):
    """A directory file that cannot be used; `errors` holds one line per problem."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


# --- reading ----------------------------------------------------------------------------


def load_directory(path: Path) -> Directory:
    """Parse and validate a directory file; errors name `path` and the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise DirectoryError([f"{path}: cannot be read: {error}"]) from None
    return parse_directory(text, source=str(path))


def parse_directory(text: str, source: str = "offices.toml") -> Directory:
    """The validated, normalised directory described by `text`, or a DirectoryError that
    lists every problem as `source:LINE: field.path: message`."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise DirectoryError([_syntax_error(error, text, source)]) from None
    draft = _Draft()
    directory = draft.build(raw)
    if draft.problems:
        lines = TomlLines(text)
        located = sorted(
            ((lines.line_of(path), path, message) for path, message in draft.problems),
            key=lambda problem: problem[0],
        )
        raise DirectoryError(
            [f"{source}:{line}: {_dotted(path)}: {message}" for line, path, message in located]
        )
    assert directory is not None
    return directory


def _syntax_error(error: tomllib.TOMLDecodeError, text: str, source: str) -> str:
    message = str(error)
    found = re.search(r"\(at line (\d+), column (\d+)\)$", message)
    if found:
        message = message[: found.start()].rstrip()
        return f"{source}:{found[1]}: {message} (column {found[2]})"
    line = text.count("\n") + 1
    message = message.removesuffix(" (at end of document)")
    return f"{source}:{line}: {message}"


def _dotted(path: FieldPath) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "(top level)"


# --- conversion and checks ----------------------------------------------------------------

_NESTED: dict[str, type[_Struct]] = {
    "services": LocationService,
    "hours": Hours,
    "closures": Closure,
    "counters": Counter,
    "printers": Printer,
    "kiosks": Kiosk,
}
_SINGULAR = {
    "authorities": "authority",
    "service_groups": "service group",
    "services": "service",
    "locations": "location",
}
_TOP: dict[str, type[_Struct]] = {
    "authorities": Authority,
    "service_groups": ServiceGroup,
    "services": Service,
    "locations": Location,
}


@dataclass
class _Draft:
    """Converts the raw TOML tables element by element, so that one bad entry does not hide
    the others, then checks what the types cannot say. Failed elements stay as None."""

    problems: list[tuple[FieldPath, str]] = field(default_factory=list)
    ids: dict[str, set[str]] = field(default_factory=dict)  # raw ids per kind, for references

    def add(self, path: FieldPath, message: str) -> None:
        self.problems.append((path, message))

    def build(self, raw: dict[str, Any]) -> Directory | None:
        for key in raw:
            if key not in _TOP and key != "holiday_state":
                self.add((key,), "unknown field")
        state = raw.get("holiday_state", "")
        if not isinstance(state, str):
            self.add(("holiday_state",), "must be a string")
            state = ""
        elif state and state not in HOLIDAY_STATES:
            self.add(("holiday_state",), _unknown_state(state))
        items = {key: self._array(raw, key, kind, ()) for key, kind in _TOP.items()}
        for key in _TOP:
            self.ids[key] = {r["id"] for r in _dicts(raw.get(key)) if isinstance(r.get("id"), str)}
        parts = [self._location_parts(r, i) for i, r in enumerate(_dicts(raw.get("locations")))]
        self._check_unique(items["authorities"], ("authorities",))
        self._check_unique(items["service_groups"], ("service_groups",))
        self._check_unique(items["services"], ("services",))
        self._check_unique(items["locations"], ("locations",))
        for i, item in enumerate(items["authorities"]):
            if item is not None:
                self._check_authority(item, ("authorities", i))
        for i, item in enumerate(items["service_groups"]):
            if item is not None:
                self._check_group(item, ("service_groups", i))
        services = {s.id: s for s in items["services"] if s is not None}
        for i, item in enumerate(items["services"]):
            if item is not None:
                self._check_service(item, ("services", i))
        for kind in ("counters", "printers", "kiosks"):
            self._check_devices(parts, kind)
        for i, item in enumerate(items["locations"]):
            if item is not None:
                self._check_location(item, parts[i], ("locations", i), services)
        if self.problems:
            return None
        return _normalise(items, parts, state)

    def _array(
        self, raw: dict[str, Any], key: str, kind: type[_Struct], path: FieldPath
    ) -> list[Any]:
        value = raw.get(key, [])
        if not isinstance(value, list):
            header = ".".join(part for part in (*path, key) if isinstance(part, str))
            self.add((*path, key), f"must be an array of tables ([[{header}]])")
            return []
        nested = _NESTED if kind is Location else {}
        return [
            self._convert(_without(item, nested), kind, (*path, key, i))
            for i, item in enumerate(value)
        ]

    def _location_parts(self, raw: dict[str, Any], index: int) -> dict[str, list[Any]]:
        return {
            key: self._array(raw, key, kind, ("locations", index)) for key, kind in _NESTED.items()
        }

    def _convert(self, raw: Any, kind: type[_Struct], path: FieldPath) -> Any:
        if kind is Hours and isinstance(raw, dict):
            raw = _with_times(raw)
        try:
            return msgspec.convert(raw, kind)
        except msgspec.ValidationError as error:
            self.add(*_type_problem(str(error), path))
            return None

    # the checks, one per kind

    def _check_unique(self, items: Sequence[Any], path: FieldPath) -> None:
        first: dict[str, int] = {}
        for i, item in enumerate(items):
            if item is None:
                continue
            if item.id in first:
                other = _dotted((*path, first[item.id]))
                self.add((*path, i, "id"), f'duplicate id "{item.id}" (also {other})')
            else:
                first[item.id] = i

    def _check_devices(self, parts: list[dict[str, list[Any]]], kind: str) -> None:
        first: dict[str, FieldPath] = {}
        for li, location_parts in enumerate(parts):
            for i, item in enumerate(location_parts[kind]):
                if item is None:
                    continue
                path: FieldPath = ("locations", li, kind, i)
                if item.id in first:
                    self.add(
                        (*path, "id"), f'duplicate id "{item.id}" (also {_dotted(first[item.id])})'
                    )
                else:
                    first[item.id] = path
                self._check_slug(item.id, (*path, "id"))
                self._check_name(item.name, (*path, "name"))

    def _check_slug(self, value: str, path: FieldPath) -> None:
        if not SLUG_RE.match(value):
            self.add(path, "must be 1 to 64 lowercase letters, digits, '-' or '_'")

    def _check_name(self, value: str, path: FieldPath) -> None:
        if not value.strip():
            self.add(path, "must not be empty")
        elif len(value) > NAME_MAX:
            self.add(path, f"must be at most {NAME_MAX} characters")

    def _check_texts(self, texts: Texts, path: FieldPath, required: bool = True) -> None:
        if not texts and not required:
            return
        if not texts.get("de", "").strip():
            self.add(path, 'needs a German text: { de = "…", en = "…" }')

    def _check_call_text(self, texts: Texts, path: FieldPath) -> None:
        for lang, text in texts.items():
            if lang not in PUBLIC_LANGUAGES:
                self.add(
                    (*path, lang), f"not a language of the display ({', '.join(PUBLIC_LANGUAGES)})"
                )
            elif set(_PLACEHOLDER.findall(text)) != {"number", "counter"}:
                self.add((*path, lang), "must name %(number)s and %(counter)s, and nothing else")

    def _check_reference(self, value: str, kind: str, path: FieldPath) -> None:
        if value not in self.ids[kind]:
            self.add(path, f'unknown {_SINGULAR[kind]} "{value}"')

    def _check_at_least(self, value: int | None, minimum: int, path: FieldPath) -> None:
        if value is not None and value < minimum:
            self.add(path, f"must be at least {minimum}")

    def _check_authority(self, item: Authority, path: FieldPath) -> None:
        self._check_slug(item.id, (*path, "id"))
        self._check_texts(item.name, (*path, "name"))

    def _check_group(self, item: ServiceGroup, path: FieldPath) -> None:
        self._check_slug(item.id, (*path, "id"))
        if not LETTER_RE.match(item.letter):
            self.add((*path, "letter"), "must be one capital letter A–Z")
        self._check_texts(item.name, (*path, "name"))

    def _check_service(self, item: Service, path: FieldPath) -> None:
        self._check_slug(item.id, (*path, "id"))
        self._check_reference(item.authority, "authorities", (*path, "authority"))
        self._check_reference(item.group, "service_groups", (*path, "group"))
        self._check_texts(item.name, (*path, "name"))
        self._check_texts(item.bring, (*path, "bring"), required=False)
        self._check_texts(item.note, (*path, "note"), required=False)
        self._check_at_least(item.duration_minutes, 1, (*path, "duration_minutes"))
        self._check_at_least(item.max_quantity, 1, (*path, "max_quantity"))

    def _check_location(
        self,
        item: Location,
        parts: dict[str, list[Any]],
        path: FieldPath,
        services: dict[str, Service],
    ) -> None:
        self._check_slug(item.id, (*path, "id"))
        self._check_reference(item.authority, "authorities", (*path, "authority"))
        self._check_texts(item.name, (*path, "name"))
        self._check_texts(item.note, (*path, "note"), required=False)
        if not item.address.strip() or len(item.address) > ADDRESS_MAX:
            self.add((*path, "address"), f"must be 1 to {ADDRESS_MAX} characters")
        if not _zone_exists(item.timezone):
            self.add((*path, "timezone"), f'unknown time zone "{item.timezone}"')
        if item.holiday_state and item.holiday_state not in HOLIDAY_STATES:
            self.add((*path, "holiday_state"), _unknown_state(item.holiday_state))
        if item.slot_minutes not in SLOT_GRIDS:
            self.add((*path, "slot_minutes"), "must be 5, 10 or 15")
        self._check_at_least(item.lead_minutes, 0, (*path, "lead_minutes"))
        self._check_at_least(item.horizon_days, 0, (*path, "horizon_days"))
        self._check_at_least(item.cancel_holdback_minutes, 0, (*path, "cancel_holdback_minutes"))
        self._check_call_text(item.queue.call_text, (*path, "queue", "call_text"))
        offered = self._check_location_services(item, parts["services"], path, services)
        counters = len(parts["counters"])
        self._check_hours(parts["hours"], (*path, "hours"), counters)
        for i, closure in enumerate(parts["closures"]):
            if closure is not None:
                self._check_closure(closure, (*path, "closures", i))
        for i, counter in enumerate(parts["counters"]):
            if counter is not None:
                self._check_counter(counter, (*path, "counters", i), offered)
        for i, printer in enumerate(parts["printers"]):
            if printer is not None:
                self._check_printer(printer, (*path, "printers", i))
        printers = {p.id for p in parts["printers"] if p is not None}
        for i, kiosk in enumerate(parts["kiosks"]):
            if kiosk is not None and kiosk.printer is not None and kiosk.printer not in printers:
                self.add(
                    (*path, "kiosks", i, "printer"),
                    f'"{kiosk.printer}" is not a printer of this location',
                )

    def _check_location_services(
        self,
        location: Location,
        items: list[LocationService | None],
        path: FieldPath,
        services: dict[str, Service],
    ) -> set[str]:
        offered: set[str] = set()
        for i, item in enumerate(items):
            if item is None:
                continue
            here = (*path, "services", i)
            service = services.get(item.service)
            if item.service in offered:
                self.add((*here, "service"), f'"{item.service}" is listed twice')
            elif item.service not in self.ids["services"]:
                self.add((*here, "service"), f'unknown service "{item.service}"')
            elif (
                service is not None
                and service.authority in self.ids["authorities"]  # else reported there
                and service.authority != location.authority
            ):
                self.add(
                    (*here, "service"),
                    f'"{item.service}" belongs to authority "{service.authority}", '
                    f'not "{location.authority}"',
                )
            else:
                offered.add(item.service)
            for name in ("duration_minutes", "daily_cap", "parallel_cap"):
                self._check_at_least(getattr(item, name), 1, (*here, name))
        return offered

    def _check_hours(self, items: list[Hours | None], path: FieldPath, counters: int) -> None:
        by_day: dict[str, list[tuple[Window, FieldPath]]] = {}
        for i, hours in enumerate(items):
            if hours is None:
                continue
            for day, count in Tally(hours.days).items():
                if count > 1:
                    self.add((*path, i, "days"), f'"{day}" is listed twice')
            if not hours.days:
                self.add((*path, i, "days"), "needs at least one day")
            if not hours.windows:
                self.add((*path, i, "windows"), "needs at least one window")
            for j, window in enumerate(hours.windows):
                here = (*path, i, "windows", j)
                if not self._check_window(window, here, counters):
                    continue
                for day in dict.fromkeys(hours.days):
                    by_day.setdefault(day, []).append((window, here))
        overlaps: dict[tuple[FieldPath, Window], list[str]] = {}
        for day in WEEKDAYS:
            latest: Window | None = None  # of the earlier windows, the one closing last
            for window, here in sorted(by_day.get(day, []), key=lambda pair: pair[0].opens):
                if latest is not None and window.opens < latest.closes:
                    overlaps.setdefault((here, latest), []).append(day)
                if latest is None or window.closes > latest.closes:
                    latest = window
        for (here, before), days in overlaps.items():
            span = f"{_hhmm(before.opens)}–{_hhmm(before.closes)}"
            self.add((*here, "opens"), f"overlaps {span} on {', '.join(days)}")

    def _check_window(self, window: Window, path: FieldPath, counters: int) -> bool:
        valid = True
        for name in ("opens", "closes"):
            if getattr(window, name).tzinfo is not None:
                self.add((*path, name), "must be a local time without offset")
                valid = False
        if valid and window.closes <= window.opens:
            self.add((*path, "closes"), f"must be after opens ({_hhmm(window.opens)})")
            valid = False
        if window.appointment_counters < 0:
            self.add((*path, "appointment_counters"), "must be at least 0")
        elif window.appointment_counters > counters:
            self.add(
                (*path, "appointment_counters"),
                f"is more than the {counters} counters of this location",
            )
        return valid

    def _check_closure(self, item: Closure, path: FieldPath) -> None:
        if item.last_day < item.first_day:
            self.add((*path, "last_day"), f"must not be before first_day ({item.first_day})")
        self._check_texts(item.reason, (*path, "reason"), required=False)

    def _check_counter(self, item: Counter, path: FieldPath, offered: set[str]) -> None:
        services = item.services or ()
        for i, service in enumerate(services):
            if service not in offered:
                self.add((*path, "services", i), f'"{service}" is not offered at this location')
            elif services.index(service) != i:
                self.add((*path, "services", i), f'"{service}" is listed twice')

    def _check_printer(self, item: Printer, path: FieldPath) -> None:
        if item.connection == "direct" and not item.target:
            self.add((*path, "target"), 'is required with connection = "direct"')
        if item.target is not None and not TARGET_RE.match(item.target):
            self.add(
                (*path, "target"),
                "must be net:HOST[:PORT], usb:VID:PID, serial:DEVICE, file:PATH or dummy:PATH",
            )
        if not item.code_page.strip():
            self.add((*path, "code_page"), "must not be empty")
        low, high = PRINT_DEADLINE_SECONDS
        if not low <= item.print_deadline_seconds <= high:
            self.add((*path, "print_deadline_seconds"), f"must be between {low} and {high}")


def _dicts(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        return []
    return [item if isinstance(item, dict) else {} for item in value]


def _without(item: Any, keys: Iterable[str]) -> Any:
    if not isinstance(item, dict):
        return item
    return {k: v for k, v in item.items() if k not in keys}


def _with_times(raw: dict[str, Any]) -> dict[str, Any]:
    """Accept "8:00" and "08:00" (TOML local times need seconds, which nobody writes)."""
    windows = raw.get("windows")
    if not isinstance(windows, list):
        return raw
    converted = []
    for window in windows:
        if isinstance(window, dict):
            window = {k: _time_of(v) if k in ("opens", "closes") else v for k, v in window.items()}
        converted.append(window)
    return {**raw, "windows": converted}


def _time_of(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    found = TIME_RE.match(value)
    if not found:
        return value
    hour, minute, second = int(found[1]), int(found[2]), int(found[3] or 0)
    if hour > 23 or minute > 59 or second > 59:
        return value
    return time(hour, minute, second)


_CHOICES: dict[str, tuple[str | int, ...]] = {
    "days": WEEKDAYS,
    "paper_width_mm": (58, 80),
    "qr_mode": ("native", "image"),
    "image_impl": ("bitImageRaster", "bitImageColumn", "graphics"),
    "connection": ("agent", "direct"),
}
_PATH_PART = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\[\.\.\.\]")


def _type_problem(message: str, base: FieldPath) -> tuple[FieldPath, str]:
    """A msgspec error ("Expected `int`, got `str` - at `$.slot_minutes`") as path and text."""
    text, _, at = message.rpartition(" - at `")
    if not text:
        text, at = message, "$`"
    path: list[str | int] = list(base)
    for part in _PATH_PART.finditer(at.rstrip("`")[1:]):
        if part[1]:
            path.append(part[1])
        elif part[2]:
            path.append(int(part[2]))
        else:
            break
    unknown = re.match(r"Object contains unknown field `(.+)`", text)
    missing = re.match(r"Object missing required field `(.+)`", text)
    if unknown:
        return (*path, unknown[1]), "unknown field"
    if missing:
        return (*path, missing[1]), "is required"
    if "RFC3339 encoded time" in text:
        return tuple(path), 'must be a time like "08:00"'
    if "RFC3339 encoded date" in text:
        return tuple(path), "must be a date like 2026-12-24"
    if text.startswith("Invalid enum value"):
        name = next((part for part in reversed(path) if isinstance(part, str)), "")
        if name in _CHOICES:
            return tuple(path), "must be one of " + ", ".join(map(str, _CHOICES[name]))
    text = text.replace("`", "")
    return tuple(path), text[:1].lower() + text[1:]


def _unknown_state(state: str) -> str:
    return f'unknown German state "{state}" (one of {", ".join(sorted(HOLIDAY_STATES))})'


def _zone_exists(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _hhmm(value: time) -> str:
    return value.strftime("%H:%M:%S" if value.second else "%H:%M")


# --- normal form ----------------------------------------------------------------------------


def group_hours(windows_by_day: dict[Weekday, Iterable[Window]]) -> tuple[Hours, ...]:
    """Opening hours in normal form: days with equal windows share one entry, days in week
    order, windows by opening time, entries in the order of their first day."""
    groups: dict[tuple[Window, ...], list[Weekday]] = {}
    for day in WEEKDAYS:
        windows = tuple(sorted(windows_by_day.get(day, ()), key=lambda w: (w.opens, w.closes)))
        if windows:
            groups.setdefault(windows, []).append(day)
    return tuple(Hours(days=tuple(days), windows=windows) for windows, days in groups.items())


def _normalise(
    items: dict[str, list[Any]], parts: list[dict[str, list[Any]]], state: str
) -> Directory:
    services: list[Service] = items["services"]
    order = {s.id: i for i, s in enumerate(services)}
    locations = []
    for location, location_parts in zip(items["locations"], parts, strict=True):
        offered = tuple(sorted(location_parts["services"], key=lambda ls: order[ls.service]))
        offered_order = {ls.service: i for i, ls in enumerate(offered)}
        by_day: dict[Weekday, list[Window]] = {}
        for hours in location_parts["hours"]:
            for day in hours.days:
                by_day.setdefault(day, []).extend(hours.windows)
        counters = tuple(
            msgspec.structs.replace(
                counter,
                services=tuple(
                    sorted(
                        offered_order if counter.services is None else counter.services,
                        key=lambda s: offered_order[s],
                    )
                ),
            )
            for counter in location_parts["counters"]
        )
        locations.append(
            msgspec.structs.replace(
                location,
                holiday_state=state if location.holiday_state is None else location.holiday_state,
                services=offered,
                hours=group_hours(by_day),
                closures=tuple(
                    sorted(location_parts["closures"], key=lambda c: (c.first_day, c.last_day))
                ),
                counters=counters,
                printers=tuple(sorted(location_parts["printers"], key=lambda p: p.id)),
                kiosks=tuple(sorted(location_parts["kiosks"], key=lambda k: k.id)),
            )
        )
    return Directory(
        authorities=tuple(items["authorities"]),
        service_groups=tuple(sorted(items["service_groups"], key=lambda g: (g.letter, g.id))),
        services=tuple(services),
        locations=tuple(locations),
    )


# --- writing ------------------------------------------------------------------------------


def dump_directory(directory: Directory) -> str:
    """The directory as TOML text that `parse_directory` reads back to an equal Directory."""
    states = Tally(location.holiday_state or "" for location in directory.locations)
    state = states.most_common(1)[0][0] if states else ""
    out = ["# aufruf office directory: aufruf offices import FILE.toml"]
    if state:
        out.append(_pair("holiday_state", state))
    for authority in directory.authorities:
        out += ["", "[[authorities]]", *_pairs(authority)]
    for group in directory.service_groups:
        out += ["", "[[service_groups]]", *_pairs(group)]
    for service in directory.services:
        out += ["", "[[services]]", *_pairs(service, skip_empty=("bring", "note"))]
    for location in directory.locations:
        out += _location_lines(location, state)
    return "\n".join(out) + "\n"


def _location_lines(location: Location, state: str) -> list[str]:
    out = ["", "[[locations]]"]
    skip = {"note", "queue"} if not location.note else {"queue"}
    if location.holiday_state == state:
        skip.add("holiday_state")
    for key, value in _fields(location):
        if key not in skip and key not in _NESTED and value is not None:
            out.append(_pair(key, value))
    offered = tuple(ls.service for ls in location.services)
    for item in location.services:
        out += ["", "[[locations.services]]", *_pairs(item)]
    for hours in location.hours:
        out += ["", "[[locations.hours]]", _pair("days", hours.days), "windows = ["]
        out += [f"    {_inline(_fields(window))}," for window in hours.windows]
        out.append("]")
    for closure in location.closures:
        out += ["", "[[locations.closures]]", *_pairs(closure, skip_empty=("reason",))]
    for counter in location.counters:
        lines = _pairs(counter)
        if counter.services == offered:
            lines = [line for line in lines if not line.startswith("services =")]
        out += ["", "[[locations.counters]]", *lines]
    for printer in location.printers:
        out += ["", "[[locations.printers]]", *_pairs(printer)]
    for kiosk in location.kiosks:
        out += ["", "[[locations.kiosks]]", *_pairs(kiosk)]
    if location.queue != Queue():
        out += ["", "[locations.queue]", *_pairs(location.queue, skip_empty=("call_text",))]
    return out


def _fields(item: _Struct) -> list[tuple[str, Any]]:
    return [(name, getattr(item, name)) for name in item.__struct_fields__]


def _pairs(item: _Struct, skip_empty: Sequence[str] = ()) -> list[str]:
    return [
        _pair(key, value)
        for key, value in _fields(item)
        if value is not None and not (key in skip_empty and not value)
    ]


def _pair(key: str, value: Any) -> str:
    return f"{_literal_key(key)} = {_literal(value)}"


def _literal(value: Any) -> str:
    """A value in TOML; texts as inline tables and short arrays on one line, for reading."""
    if isinstance(value, dict):
        return _inline(list(value.items()))
    if isinstance(value, tuple | list):
        items = [_literal(item) for item in value]
        one_line = "[" + ", ".join(items) + "]"
        if len(one_line) <= 80:
            return one_line
        return "[\n" + "".join(f"    {item},\n" for item in items) + "]"
    if isinstance(value, time):
        value = _hhmm(value)
    return tomli_w.dumps({"v": value}).rstrip("\n")[len("v = ") :]


def _literal_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else tomli_w.dumps({key: 0})[: -len(" = 0\n")]


def _inline(pairs: Iterable[tuple[str, Any]]) -> str:
    inner = ", ".join(_pair(key, value) for key, value in pairs if value is not None)
    return "{ " + inner + " }" if inner else "{}"


# --- where in the text ----------------------------------------------------------------------

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
