"""Which start times a location offers: length, windows, places, caps, lead time, horizon."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from aufruf.booking.logic import (
    DAY,
    SLOT,
    START,
    LocationRules,
    NotBookable,
    Usage,
    appointment_minutes,
    check_start,
    claims_for_start,
    free_starts,
    need_of,
)

from .location_rules import a_location, a_service, booked, instant, wall, walls

MONDAY = date(2026, 3, 9)
TUESDAY = date(2026, 3, 10)
SATURDAY = date(2026, 3, 14)
FRIDAY_BEFORE = "2026-03-06 10:00"
PASSPORT = {"reisepass": 1}
TWO_PASSPORTS = {"reisepass": 2}
REGISTRATION = {"meldebescheinigung": 1}


def offered(
    rules: LocationRules,
    need: dict[str, int],
    *,
    on: date = MONDAY,
    usage: Usage | None = None,
    now: str = FRIDAY_BEFORE,
) -> list[str]:
    """The wall times of the starts offered on one day."""
    return walls(free_starts(rules, need, usage or Usage(), instant(now), on, on)[on])


def every(minutes: int, first: str, last: str) -> list[str]:
    """Wall times from first to last inclusive, `minutes` apart."""
    hour, minute = map(int, first.split(":"))
    result = []
    while True:
        result.append(f"{hour:02d}:{minute:02d}")
        if result[-1] == last:
            return result
        minute += minutes
        hour, minute = hour + minute // 60, minute % 60


# Length of an appointment


def test_a_15_minute_service_on_a_10_minute_grid_takes_two_slots():
    rules = a_location(grid=10)

    claims = claims_for_start(rules, PASSPORT, instant("2026-03-09 08:00"))

    assert appointment_minutes(rules, PASSPORT) == 20
    assert [wall(c.at) for c in claims if c.kind == SLOT] == ["08:00", "08:10"]


def test_the_last_start_leaves_room_for_the_whole_appointment():
    rules = a_location(grid=10, hours="08:00-09:00")

    assert offered(rules, PASSPORT) == every(10, "08:00", "08:40")


def test_two_passports_take_twice_the_time():
    rules = a_location(grid=10, hours="08:00-09:00")

    claims = claims_for_start(rules, TWO_PASSPORTS, instant("2026-03-09 08:00"))

    assert appointment_minutes(rules, TWO_PASSPORTS) == 30
    assert [wall(c.at) for c in claims if c.kind == SLOT] == ["08:00", "08:10", "08:20"]
    assert offered(rules, TWO_PASSPORTS) == every(10, "08:00", "08:30")


def test_different_services_add_up_before_rounding_to_the_grid():
    rules = a_location(grid=10)

    assert appointment_minutes(rules, {"reisepass": 1, "meldebescheinigung": 1}) == 20
    assert appointment_minutes(rules, REGISTRATION) == 10


def test_a_service_named_twice_is_needed_twice():
    assert need_of(["reisepass", "meldebescheinigung", "reisepass"]) == {
        "reisepass": 2,
        "meldebescheinigung": 1,
    }


# Opening windows


def test_an_appointment_never_straddles_the_lunch_break():
    rules = a_location(grid=10, hours="08:00-10:00, 11:00-12:00", services={"x": a_service(60)})

    assert offered(rules, {"x": 1}) == [*every(10, "08:00", "09:00"), "11:00"]


def test_the_grid_counts_from_the_opening_of_each_window():
    rules = a_location(grid=15, hours="08:00-09:00, 13:10-14:00", services={"x": a_service(15)})

    assert offered(rules, {"x": 1}) == [
        "08:00",
        "08:15",
        "08:30",
        "08:45",
        "13:10",
        "13:25",
        "13:40",
    ]


def test_an_appointment_longer_than_every_window_is_never_offered():
    rules = a_location(hours="08:00-09:00", services={"x": a_service(70)})

    assert offered(rules, {"x": 1}) == []


def test_windows_without_appointment_places_offer_nothing():
    rules = a_location(places=0)

    starts = free_starts(rules, REGISTRATION, Usage(), instant(FRIDAY_BEFORE))

    assert starts and all(day == [] for day in starts.values())


# Places and caps


def test_a_full_slot_removes_every_start_that_would_cover_it():
    rules = a_location(places=1)
    usage = booked(rules, REGISTRATION, "2026-03-09 09:00")

    starts = offered(rules, PASSPORT, usage=usage)

    assert "08:40" in starts and "09:10" in starts
    assert "08:50" not in starts and "09:00" not in starts


def test_a_slot_with_a_place_left_still_offers_every_start_covering_it():
    rules = a_location(places=2)
    usage = booked(rules, REGISTRATION, "2026-03-09 09:00")

    assert offered(rules, PASSPORT, usage=usage) == offered(rules, PASSPORT)


def test_a_fully_booked_day_is_present_with_no_starts():
    rules = a_location(places=1, hours="08:00-08:30")
    usage = booked(rules, {"reisepass": 1}, "2026-03-09 08:00")
    usage = booked(rules, REGISTRATION, "2026-03-09 08:20", usage)

    starts = free_starts(rules, REGISTRATION, usage, instant(FRIDAY_BEFORE), MONDAY, TUESDAY)

    assert starts[MONDAY] == []
    assert walls(starts[TUESDAY]) == ["08:00", "08:10", "08:20"]


def test_the_daily_cap_closes_the_day_for_that_service_only():
    rules = a_location(
        places=3,
        services={"reisepass": a_service(15, daily_cap=2), "meldebescheinigung": a_service(5)},
    )
    usage = booked(rules, PASSPORT, "2026-03-09 08:00")
    usage = booked(rules, PASSPORT, "2026-03-09 10:00", usage)

    assert offered(rules, PASSPORT, usage=usage) == []
    assert offered(rules, PASSPORT, usage=usage, on=TUESDAY) == every(10, "08:00", "11:40")
    assert offered(rules, REGISTRATION, usage=usage) == every(10, "08:00", "11:50")


def test_two_passports_do_not_fit_under_a_daily_cap_with_one_unit_left():
    rules = a_location(places=3, services={"reisepass": a_service(15, daily_cap=3)})
    usage = booked(rules, TWO_PASSPORTS, "2026-03-09 08:00")

    assert offered(rules, TWO_PASSPORTS, usage=usage) == []
    assert offered(rules, PASSPORT, usage=usage) != []


def test_the_daily_cap_is_claimed_at_the_local_midnight_of_the_day():
    rules = a_location(services={"reisepass": a_service(15, daily_cap=4)})

    claims = claims_for_start(rules, PASSPORT, instant("2026-03-09 08:00"))

    assert [c.at for c in claims if c.kind == DAY] == [instant("2026-03-09 00:00")]


def test_the_parallel_cap_limits_units_starting_at_the_same_instant():
    rules = a_location(
        places=3,
        services={"reisepass": a_service(15, parallel_cap=1), "meldebescheinigung": a_service(5)},
    )
    usage = booked(rules, PASSPORT, "2026-03-09 09:00")

    passport_starts = offered(rules, PASSPORT, usage=usage)
    assert "09:00" not in passport_starts
    assert "08:50" in passport_starts and "09:10" in passport_starts
    assert "09:00" in offered(rules, REGISTRATION, usage=usage)


def test_two_passports_never_fit_a_parallel_cap_of_one():
    rules = a_location(places=3, services={"reisepass": a_service(15, parallel_cap=1)})

    assert offered(rules, TWO_PASSPORTS) == []
    assert offered(rules, PASSPORT) != []


def test_a_booking_claims_one_place_per_slot_and_its_caps():
    rules = a_location(places=2, services={"reisepass": a_service(15, daily_cap=7, parallel_cap=3)})

    claims = claims_for_start(rules, TWO_PASSPORTS, instant("2026-03-09 08:00"))

    assert [(c.kind, wall(c.at), c.n, c.capacity) for c in claims] == [
        (SLOT, "08:00", 1, 2),
        (SLOT, "08:10", 1, 2),
        (SLOT, "08:20", 1, 2),
        (DAY, "00:00", 2, 7),
        (START, "08:00", 2, 3),
    ]


# Lead time and horizon


def test_lead_time_hides_starts_before_now_plus_lead():
    rules = a_location(lead=120)

    assert offered(rules, REGISTRATION, now="2026-03-09 09:05") == every(10, "11:10", "11:50")


def test_a_start_exactly_at_now_plus_lead_is_offered():
    rules = a_location(lead=120)

    assert offered(rules, REGISTRATION, now="2026-03-09 09:00")[0] == "11:00"


def test_lead_time_reaches_into_the_next_day():
    rules = a_location(lead=24 * 60)

    assert offered(rules, REGISTRATION, on=TUESDAY, now="2026-03-09 09:05")[0] == "09:10"


def test_nothing_is_offered_after_today_plus_the_horizon():
    rules = a_location(horizon=14)
    now = instant(FRIDAY_BEFORE)

    starts = free_starts(rules, REGISTRATION, Usage(), now, last=date(2026, 4, 30))

    assert min(starts) == date(2026, 3, 6)
    assert max(starts) == date(2026, 3, 20)
    assert len(starts) == 15
    assert starts[date(2026, 3, 20)] != []


def test_the_range_starts_no_earlier_than_today():
    rules = a_location()

    starts = free_starts(
        rules, REGISTRATION, Usage(), instant(FRIDAY_BEFORE), date(2026, 3, 1), date(2026, 3, 9)
    )

    assert list(starts) == [date(2026, 3, 6) + timedelta(days=i) for i in range(4)]


# Closed days


def test_a_closed_day_is_present_with_no_starts():
    rules = a_location(closed=[MONDAY])

    starts = free_starts(rules, REGISTRATION, Usage(), instant(FRIDAY_BEFORE), MONDAY, TUESDAY)

    assert starts[MONDAY] == []
    assert walls(starts[TUESDAY]) == every(10, "08:00", "11:50")


def test_a_day_without_opening_hours_is_present_with_no_starts():
    rules = a_location(days=[0])

    starts = free_starts(rules, REGISTRATION, Usage(), instant(FRIDAY_BEFORE), SATURDAY, SATURDAY)

    assert starts == {SATURDAY: []}


# check_start: what a booking may ask for


def test_check_start_returns_the_claims_of_an_allowed_start():
    rules = a_location()
    start = instant("2026-03-09 08:00")

    claims = check_start(rules, PASSPORT, start, instant(FRIDAY_BEFORE))

    assert claims == claims_for_start(rules, PASSPORT, start)


@pytest.mark.parametrize(
    ("start", "now", "reason"),
    [
        pytest.param("2026-03-09 08:05", FRIDAY_BEFORE, "off_grid", id="off the grid"),
        pytest.param("2026-03-09 11:00", "2026-03-09 09:30", "too_soon", id="within the lead"),
        pytest.param("2026-03-09 09:00", "2026-03-09 09:30", "in_past", id="in the past"),
        pytest.param("2026-03-23 08:00", FRIDAY_BEFORE, "beyond_horizon", id="beyond horizon"),
        pytest.param("2026-03-09 11:50", FRIDAY_BEFORE, "too_long", id="longer than window"),
        pytest.param("2026-03-09 13:00", FRIDAY_BEFORE, "closed", id="after closing"),
        pytest.param("2026-03-14 08:00", FRIDAY_BEFORE, "closed", id="on a saturday"),
    ],
)
def test_check_start_rejects_a_start_the_rules_do_not_allow(start, now, reason):
    rules = a_location(horizon=14)

    with pytest.raises(NotBookable) as raised:
        check_start(rules, PASSPORT, instant(start), instant(now))

    assert raised.value.reason == reason


def test_check_start_rejects_a_start_on_a_closed_day():
    rules = a_location(closed=[MONDAY])

    with pytest.raises(NotBookable) as raised:
        check_start(rules, PASSPORT, instant("2026-03-09 08:00"), instant(FRIDAY_BEFORE))

    assert raised.value.reason == "closed"


def test_check_start_rejects_a_window_without_appointment_places():
    rules = a_location(places=0)

    with pytest.raises(NotBookable) as raised:
        check_start(rules, PASSPORT, instant("2026-03-09 08:00"), instant(FRIDAY_BEFORE))

    assert raised.value.reason == "closed"


def test_check_start_accepts_the_last_day_of_the_horizon():
    rules = a_location(horizon=14)

    assert check_start(rules, PASSPORT, instant("2026-03-20 11:40"), instant(FRIDAY_BEFORE))
