"""Properties of availability over small random locations, usage and clocks.

The reference `reference_free_starts` is written from the specification alone: it walks every
minute of each local day and asks of each instant whether an appointment may start there. It
does not use logic.py's helpers (claims_for_start, windows_on, ...), so agreement means
something. A wall time of the opening hours is the first instant of the day at which the
Berlin wall clock shows that time or later (in the repeated autumn hour: its first pass).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from itertools import pairwise
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from aufruf.booking.logic import (
    CODE_ALPHABET,
    DAY,
    SLOT,
    START,
    LocationRules,
    ServiceRule,
    Usage,
    Window,
    check_start,
    free_starts,
    new_code,
    normalise_code,
)

TIMEZONE = "Europe/Berlin"
ZONE = ZoneInfo(TIMEZONE)
MINUTE = timedelta(minutes=1)
SERVICE_NAMES = ("a", "b", "c")

# Days on and around both clock changes of 2026 come up often; any day of the year may.
AROUND_CHANGES = [date(2026, 3, 26) + timedelta(days=i) for i in range(5)] + [
    date(2026, 10, 22) + timedelta(days=i) for i in range(5)
]
ANY_DAY = st.one_of(st.sampled_from(AROUND_CHANGES), st.dates(date(2026, 1, 1), date(2026, 12, 31)))
# A Friday or Saturday whose next three days hold a clock-change Sunday.
BEFORE_A_CHANGE = st.sampled_from(
    [date(2026, 3, 27), date(2026, 3, 28), date(2026, 10, 23), date(2026, 10, 24)]
)
# Boundaries in and around the night hours of the changes come up often; any minute may.
NIGHT_MINUTES = [60, 120, 0, 50, 100, 125, 130, 140, 150, 165, 170, 180, 190, 210, 240]

ANY_OPENING = st.one_of(st.sampled_from(NIGHT_MINUTES), st.integers(0, 16 * 60))
WINDOW_LENGTHS = [120, 60, 240, 15, 30, 45, 90, 180, 360]
SOME_HORIZON = st.sampled_from([0, 1, 2, 3, 3])

properties = settings(max_examples=200, deadline=None, derandomize=True, database=None)


# The reference, from the specification


@cache
def local_minutes(day: date) -> tuple[tuple[datetime, time], ...]:
    """Every minute-aligned UTC instant whose Berlin date is `day`, with its wall time."""
    at = datetime.combine(day, time(0), UTC) - timedelta(hours=14)
    result = []
    while (local := at.astimezone(ZONE)).date() <= day:
        if local.date() == day:
            result.append((at, local.time()))
        at += MINUTE
    return tuple(result)


def reference_windows(rules: LocationRules, day: date) -> list[tuple[datetime, datetime, int]]:
    """The opening windows of a day as instants: each bound is the first instant at which
    the wall clock shows the bound or later."""
    if day in rules.closed_days:
        return []
    minutes = local_minutes(day)
    end_of_day = minutes[-1][0] + MINUTE

    def first_at_or_after(bound: time) -> datetime:
        return next((at for at, wall in minutes if wall >= bound), end_of_day)

    return [
        (first_at_or_after(w.opens), first_at_or_after(w.closes), w.places)
        for w in rules.weekly.get(day.weekday(), ())
    ]


def reference_slots(rules: LocationRules, need: dict[str, int]) -> int:
    """Grid slots an appointment covers: the summed durations, rounded up, at least one."""
    total = sum(rules.services[s].duration_minutes * q for s, q in need.items())
    return max(1, -(-total // rules.slot_minutes))


def reference_days(rules: LocationRules, now: datetime, first, last) -> list[date]:
    today = now.astimezone(ZONE).date()
    horizon = today + timedelta(days=rules.horizon_days)
    day, last = max(first or today, today), min(last or horizon, horizon)
    days = []
    while day <= last:
        days.append(day)
        day += timedelta(days=1)
    return days


def reference_free_starts(rules, need, usage, now, first=None, last=None):
    """Every instant of each day at which `need` may start, by brute force."""
    used = usage.used
    grid = timedelta(minutes=rules.slot_minutes)
    slots = reference_slots(rules, need)
    earliest = now + timedelta(minutes=rules.lead_minutes)
    result = {}
    for day in reference_days(rules, now, first, last):
        midnight = local_minutes(day)[0][0]
        windows = reference_windows(rules, day)

        def fits_caps(at: datetime, midnight=midnight) -> bool:
            for service, quantity in need.items():
                rule = rules.services[service]
                if rule.daily_cap is not None:
                    if used.get((DAY, service, midnight), 0) + quantity > rule.daily_cap:
                        return False
                if rule.parallel_cap is not None:
                    if used.get((START, service, at), 0) + quantity > rule.parallel_cap:
                        return False
            return True

        def free(at: datetime, windows=windows) -> bool:
            for opens, closes, places in windows:
                if not (opens <= at and at + slots * grid <= closes):
                    continue
                if (at - opens) % grid or places <= 0:
                    continue
                covered = (at + k * grid for k in range(slots))
                if all(used.get((SLOT, "", slot), 0) + 1 <= places for slot in covered):
                    return fits_caps(at)
            return False

        result[day] = [at for at, _ in local_minutes(day) if at >= earliest and free(at)]
    return result


def capacity_of(rules: LocationRules, key: tuple[str, str, datetime]) -> int:
    """How many a row of usage may hold, read from the rules (a slot outside every window: 0)."""
    kind, service, at = key
    if kind == DAY:
        return rules.services[service].daily_cap
    if kind == START:
        return rules.services[service].parallel_cap
    windows = reference_windows(rules, at.astimezone(ZONE).date())
    return next((places for opens, closes, places in windows if opens <= at < closes), 0)


# Generators


@dataclass(frozen=True)
class Situation:
    rules: LocationRules
    need: dict[str, int]
    usage: Usage
    now: datetime
    first: date | None
    last: date | None


def as_time(minute: int) -> time:
    return time(minute // 60, minute % 60)


@st.composite
def windows_of_a_day(draw, first_opens) -> tuple[Window, ...]:
    """One or two windows in order, not overlapping (perhaps touching), 0-3 places each."""
    opens = draw(first_opens)
    windows = []
    for _ in range(draw(st.integers(1, 2))):
        closes = opens + draw(st.one_of(st.sampled_from(WINDOW_LENGTHS), st.integers(5, 6 * 60)))
        if closes >= 24 * 60:
            break
        places = draw(st.sampled_from([1, 2, 3, 0]))
        windows.append(Window(as_time(opens), as_time(closes), places))
        opens = closes + draw(st.sampled_from([0, 5, 30, 60, 75]))
        if opens >= 24 * 60:
            break
    return tuple(windows)


def a_cap():
    return st.one_of(st.none(), st.none(), st.integers(1, 4), st.just(0))


@st.composite
def service_rules(draw) -> dict[str, ServiceRule]:
    names = draw(st.lists(st.sampled_from(SERVICE_NAMES), min_size=1, max_size=3, unique=True))
    return {
        name: ServiceRule(draw(st.integers(5, 40)), 3, draw(a_cap()), draw(a_cap()))
        for name in names
    }


def needs(rules: LocationRules):
    return st.dictionaries(
        st.sampled_from(sorted(rules.services)), st.integers(1, 2), min_size=1, max_size=2
    )


@st.composite
def situations(
    draw,
    days=ANY_DAY,
    horizons=SOME_HORIZON,
    first_opens=ANY_OPENING,
) -> Situation:
    """Rules, a need, earlier bookings, a clock (UTC, as the Clock gives it) and a range."""
    day = draw(days)
    now = datetime.combine(day, time(0), UTC) + timedelta(minutes=draw(st.integers(-120, 1439)))
    today = now.astimezone(ZONE).date()
    weekdays = draw(st.lists(st.integers(0, 6), min_size=5, max_size=7, unique=True))
    horizon = draw(horizons)
    closed = draw(
        st.sets(st.integers(0, horizon).map(lambda i: today + timedelta(days=i)), max_size=1)
    )
    rules = LocationRules(
        timezone=TIMEZONE,
        slot_minutes=draw(st.sampled_from([5, 10, 15])),
        weekly={weekday: draw(windows_of_a_day(first_opens)) for weekday in weekdays},
        services=draw(service_rules()),
        closed_days=frozenset(closed),
        lead_minutes=draw(st.sampled_from([0, 0, 30, 60, 120, 150, 24 * 60])),
        horizon_days=horizon,
    )
    first = draw(st.one_of(st.none(), st.integers(-1, 2).map(lambda i: today + timedelta(days=i))))
    after = st.integers(0, 3).map(lambda i: (first or today) + timedelta(days=i))
    last = draw(st.one_of(st.none(), after))
    return Situation(rules, draw(needs(rules)), draw(usages(rules, today)), now, first, last)


@st.composite
def usages(draw, rules: LocationRules, today: date) -> Usage:
    """Random earlier bookings: taken places in grid slots, units under daily and parallel caps."""
    days = [today + timedelta(days=i) for i in range(rules.horizon_days + 1)]
    grid = timedelta(minutes=rules.slot_minutes)
    slots = []
    for day in days:
        for opens, closes, _ in reference_windows(rules, day):
            at = opens
            while at < closes:
                slots.append(at)
                at += grid
    used: dict[tuple[str, str, datetime], int] = {}
    if not slots:
        return Usage(used)
    for at in draw(st.lists(st.sampled_from(slots), max_size=8)):
        used[(SLOT, "", at)] = draw(st.sampled_from([1, 2, 3]))
    for service, rule in rules.services.items():
        if rule.daily_cap is not None:
            for day in draw(st.lists(st.sampled_from(days), max_size=2, unique=True)):
                midnight = local_minutes(day)[0][0]
                used[(DAY, service, midnight)] = draw(st.integers(0, rule.daily_cap))
        if rule.parallel_cap is not None:
            for at in draw(st.lists(st.sampled_from(slots), max_size=4)):
                used[(START, service, at)] = draw(st.integers(0, rule.parallel_cap))
    return Usage(used)


# Properties


@properties
@given(situation=situations(), data=st.data())
def test_booking_offered_starts_one_after_another_never_overfills_anything(situation, data):
    """Booking any offered start, again and again with fresh availability each time, never
    puts more appointments in a grid slot than its window has places, more units of a
    service into a day than its daily cap, or more starting at one instant than its
    parallel cap; and every offered start is one check_start accepts."""
    rules, now = situation.rules, situation.now
    used = dict(situation.usage.used)
    touched = set()
    for _ in range(6):
        need = data.draw(needs(rules))
        offered = free_starts(rules, need, Usage(used), now, situation.first, situation.last)
        starts = [at for day in offered.values() for at in day]
        if not starts:
            break
        start = data.draw(st.sampled_from(starts))
        for claim in check_start(rules, need, start, now):
            used[claim.key] = used.get(claim.key, 0) + claim.n
            touched.add(claim.key)
        for key in touched:
            assert used[key] <= capacity_of(rules, key), key


@properties
@given(situation=situations())
def test_every_free_start_is_offered_and_nothing_else(situation):
    """The starts offered are exactly the instants at which the whole appointment fits in
    one window on its grid, each covered slot has a free place, every cap has room, and
    which are no earlier than now + lead and no later than today + horizon."""
    s = situation
    expected = reference_free_starts(s.rules, s.need, s.usage, s.now, s.first, s.last)

    assert free_starts(s.rules, s.need, s.usage, s.now, s.first, s.last) == expected


@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(situation=situations(BEFORE_A_CHANGE, st.just(3), st.sampled_from(NIGHT_MINUTES)))
def test_around_the_clock_change_nights_every_free_start_is_offered_and_nothing_else(situation):
    """The same as above, for locations open in the night hours and a clock a day or two
    before a clock-change Sunday: the skipped and the repeated hour change nothing of it."""
    s = situation
    expected = reference_free_starts(s.rules, s.need, s.usage, s.now, s.first, s.last)

    assert free_starts(s.rules, s.need, s.usage, s.now, s.first, s.last) == expected


@properties
@given(situation=situations())
def test_offered_starts_lie_on_their_windows_grid_in_order_for_every_day(situation):
    """Every day of the requested range, clipped to today ... today + horizon, is listed (an
    empty list when nothing is free); each start lies on its day, on the grid counted
    from the opening of its window, not before now + lead; starts increase strictly."""
    s = situation
    grid = timedelta(minutes=s.rules.slot_minutes)
    earliest = s.now + timedelta(minutes=s.rules.lead_minutes)

    offered = free_starts(s.rules, s.need, s.usage, s.now, s.first, s.last)

    assert list(offered) == reference_days(s.rules, s.now, s.first, s.last)
    for day, starts in offered.items():
        assert all(a < b for a, b in pairwise(starts))
        windows = reference_windows(s.rules, day)
        for at in starts:
            assert at.astimezone(ZONE).date() == day
            assert at >= earliest
            assert any(o <= at < c and (at - o) % grid == timedelta(0) for o, c, _ in windows)


@properties
@given(seed=st.integers(0, 2**64), separators=st.lists(st.sampled_from(["", " ", "-"])))
def test_booking_codes_avoid_look_alikes_and_read_back_however_typed(seed, separators):
    """A booking code has six characters from an alphabet without 0, O, 1, I and L; typed in
    lower case with spaces or dashes in between, it reads back as the same code."""
    code = new_code(random.Random(seed))
    typed = "".join(
        ch.lower() + sep for ch, sep in zip(code, [*separators, *[""] * 6], strict=False)
    )

    assert len(code) == 6
    assert set(code) <= set(CODE_ALPHABET)
    assert not set(code) & set("0O1IL")
    assert normalise_code(typed) == code
    assert normalise_code(f"  {typed.upper()}  ") == code


def test_the_code_alphabet_has_no_look_alikes():
    assert not set(CODE_ALPHABET) & set("0O1IL")
    assert len(CODE_ALPHABET) == len(set(CODE_ALPHABET)) == 31
