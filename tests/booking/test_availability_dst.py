"""Availability across the daylight-saving changes of Europe/Berlin in 2026.

Opening hours are wall-clock times; lead time is real elapsed time. On 29 March the clocks
jump from 02:00 CET to 03:00 CEST (UTC+1 -> UTC+2), on 25 October they fall back from
03:00 CEST to 02:00 CET, so the hour from 02:00 to 03:00 happens twice.
"""

from __future__ import annotations

from datetime import date, timedelta
from itertools import pairwise

import pytest

from aufruf.booking.logic import DAY, NotBookable, Usage, check_start, claims_for_start, free_starts

from .location_rules import SUNDAY, a_location, a_service, instant, local, utc, walls

TEN_MINUTES = {"kurz": 1}
SERVICES = {"kurz": a_service(10)}
SPRING_SUNDAY = date(2026, 3, 29)
AUTUMN_SUNDAY = date(2026, 10, 25)


def monday_starts(now: str, monday: date) -> list:
    rules = a_location(hours="08:00-12:00", services=SERVICES, lead=120)
    return free_starts(rules, TEN_MINUTES, Usage(), instant(now), monday, monday)[monday]


def sunday_starts(hours: str, sunday: date, *, lead: int = 120, now=None) -> list:
    rules = a_location(hours=hours, days=[SUNDAY], services=SERVICES, lead=lead)
    now = now or instant(str(sunday - timedelta(days=2)) + " 10:00")
    return free_starts(rules, TEN_MINUTES, Usage(), now, sunday, sunday)[sunday]


@pytest.mark.parametrize(
    ("now", "monday", "first_utc"),
    [
        pytest.param("2026-03-21 10:00", date(2026, 3, 23), "2026-03-23 07:00", id="march-before"),
        pytest.param("2026-03-28 10:00", date(2026, 3, 30), "2026-03-30 06:00", id="march-sat"),
        pytest.param("2026-03-29 12:00", date(2026, 3, 30), "2026-03-30 06:00", id="march-sun"),
        pytest.param("2026-03-30 06:00", date(2026, 3, 30), "2026-03-30 06:00", id="march-mon"),
        pytest.param(
            "2026-10-17 10:00", date(2026, 10, 19), "2026-10-19 06:00", id="october-before"
        ),
        pytest.param("2026-10-24 10:00", date(2026, 10, 26), "2026-10-26 07:00", id="october-sat"),
        pytest.param("2026-10-25 12:00", date(2026, 10, 26), "2026-10-26 07:00", id="october-sun"),
        pytest.param("2026-10-26 06:00", date(2026, 10, 26), "2026-10-26 07:00", id="october-mon"),
    ],
)
def test_the_monday_around_a_clock_change_opens_at_eight_local_time(now, monday, first_utc):
    starts = monday_starts(now, monday)

    assert starts[0] == utc(first_utc)
    assert walls(starts[:1] + starts[-1:]) == ["08:00", "11:50"]
    assert len(starts) == len(monday_starts("2026-03-14 10:00", date(2026, 3, 16))) == 24


@pytest.mark.parametrize("given_in", ["utc", "local"])
@pytest.mark.parametrize(
    ("now", "lead", "first_utc"),
    [
        # 01:30 CET = 00:30 UTC; + 60 min = 01:30 UTC = 03:30 CEST
        pytest.param("2026-03-29 01:30", 60, "2026-03-29 01:30", id="spring-60"),
        # + 120 min = 02:30 UTC = 04:30 CEST, not 03:30 as the wall clock would suggest
        pytest.param("2026-03-29 01:30", 120, "2026-03-29 02:30", id="spring-120"),
        # 01:30 CEST = 23:30 UTC; + 60 min = 00:30 UTC = 02:30 CEST, the first 02:30
        pytest.param("2026-10-25 01:30", 60, "2026-10-25 00:30", id="autumn-60"),
        # + 120 min = 01:30 UTC = 02:30 CET, the second 02:30, not 03:30 CET
        pytest.param("2026-10-25 01:30", 120, "2026-10-25 01:30", id="autumn-120"),
    ],
)
def test_lead_time_counts_real_elapsed_time_across_the_change(now, lead, first_utc, given_in):
    """The same instant `now`, whether handed over in UTC (as the Clock does) or as an aware
    Berlin time, gives the same earliest start: now plus `lead` real minutes."""
    at = instant(now) if given_in == "utc" else local(now)

    starts = sunday_starts("00:00-06:00", local(now).date(), lead=lead, now=at)

    assert starts[0] == utc(first_utc)


@pytest.mark.parametrize("given_in", ["utc", "local"])
def test_check_start_counts_lead_time_in_real_time_across_the_change(given_in):
    """At 01:30 CET, 03:30 CEST is one real hour away: too soon for a two-hour lead."""
    rules = a_location(hours="00:00-06:00", days=[SUNDAY], services=SERVICES, lead=120)
    now = instant("2026-03-29 01:30") if given_in == "utc" else local("2026-03-29 01:30")

    with pytest.raises(NotBookable) as raised:
        check_start(rules, TEN_MINUTES, utc("2026-03-29 01:30"), now)

    assert raised.value.reason == "too_soon"


@pytest.mark.parametrize(
    ("sunday", "count"),
    [
        pytest.param(SPRING_SUNDAY, 12, id="spring: two real hours"),
        pytest.param(AUTUMN_SUNDAY, 24, id="autumn: four real hours"),
    ],
)
def test_a_window_across_the_change_offers_one_start_per_real_grid_step(sunday, count):
    starts = sunday_starts("01:00-04:00", sunday)

    assert len(starts) == count
    assert all(b - a == timedelta(minutes=10) for a, b in pairwise(starts))


def test_the_spring_window_skips_the_hour_that_does_not_exist():
    starts = sunday_starts("01:00-04:00", SPRING_SUNDAY)

    assert (starts[0], starts[-1]) == (utc("2026-03-29 00:00"), utc("2026-03-29 01:50"))
    assert walls(starts[5:7]) == ["01:50", "03:00"]


def test_the_autumn_window_offers_the_repeated_hour_twice():
    starts = sunday_starts("01:00-04:00", AUTUMN_SUNDAY)

    assert (starts[0], starts[-1]) == (utc("2026-10-24 23:00"), utc("2026-10-25 02:50"))
    assert walls(starts).count("02:00") == 2


def test_the_daily_cap_of_a_clock_change_day_is_claimed_at_its_local_midnight():
    rules = a_location(days=[SUNDAY], services={"kurz": a_service(10, daily_cap=5)})

    for sunday, midnight in [
        (SPRING_SUNDAY, "2026-03-28 23:00"),
        (AUTUMN_SUNDAY, "2026-10-24 22:00"),
    ]:
        claims = claims_for_start(rules, TEN_MINUTES, instant(f"{sunday} 08:00"))
        assert [c.at for c in claims if c.kind == DAY] == [utc(midnight)]


def test_a_window_inside_the_skipped_hour_offers_nothing():
    """02:10-02:50 never shows on the wall clock on 29 March: the clock jumps from 01:59 to
    03:00. Offering 03:10 CEST would be 20 minutes after the posted closing time."""
    assert sunday_starts("02:10-02:50", SPRING_SUNDAY) == []


def test_a_window_closing_inside_the_skipped_hour_closes_when_the_clock_jumps():
    """A window 01:00-02:30 ends when the wall clock passes 02:30, that is at 03:00 CEST;
    a start at 03:00 or 03:20 CEST would be after the posted closing time."""
    starts = sunday_starts("01:00-02:30", SPRING_SUNDAY)

    assert walls(starts) == ["01:00", "01:10", "01:20", "01:30", "01:40", "01:50"]


def test_a_window_in_the_skipped_hour_does_not_break_the_window_after_it():
    """02:30-02:45 and 03:00-04:00 on 29 March: the first never shows on the wall clock,
    the second is an ordinary hour of six ten-minute starts."""
    starts = sunday_starts("02:30-02:45, 03:00-04:00", SPRING_SUNDAY)

    assert walls(starts) == ["03:00", "03:10", "03:20", "03:30", "03:40", "03:50"]
