"""Who is called next, how many people are ahead and how long the wait is: the rules by example.

Services are single letters ("AB" is a ticket for services A and B); times are "HH:MM" on one day.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aufruf.queue.logic import (
    Desk,
    OrderRules,
    Serving,
    Waiting,
    call_order,
    can_serve,
    desk_line,
    estimated_wait_minutes,
    is_due,
    next_due_change,
    next_for,
    people_ahead,
    rolling_service_minutes,
)

RULES = OrderRules()
MINUTES = {"A": 10.0, "B": 6.0, "C": 20.0}


def instant(hhmm: str) -> datetime:
    hour, minute = map(int, hhmm.split(":"))
    return datetime(2026, 3, 9, hour, minute, tzinfo=UTC)


def a_walk_in(id: int, at: str = "09:00", services: str = "A", priority: int = 0) -> Waiting:
    return Waiting(id, frozenset(services), instant(at), priority=priority)


def an_appointment(
    id: int, arrived: str = "09:00", time: str = "09:10", services: str = "A"
) -> Waiting:
    return Waiting(id, frozenset(services), instant(arrived), appointment_at=instant(time))


def a_desk(id: str = "1", serves: str = "AB", open: bool = True) -> Desk:
    return Desk(id, frozenset(serves), open=open)


def ids(tickets: list[Waiting]) -> list[int]:
    return [t.id for t in tickets]


def order_at(now: str, *tickets: Waiting, rules: OrderRules = RULES) -> list[int]:
    return ids(call_order(tickets, instant(now), rules))


# The call order


def test_walk_ins_are_called_by_arrival() -> None:
    assert order_at("09:30", a_walk_in(2, at="09:05"), a_walk_in(1, at="09:00")) == [1, 2]


def test_staff_priority_goes_first() -> None:
    tickets = [a_walk_in(1, at="09:00"), a_walk_in(2, at="09:20", priority=1)]
    assert order_at("09:30", *tickets) == [2, 1]


def test_higher_priority_goes_before_lower_priority() -> None:
    tickets = [a_walk_in(1, priority=1), a_walk_in(2, at="09:20", priority=2)]
    assert order_at("09:30", *tickets) == [2, 1]


def test_priority_goes_before_a_due_appointment() -> None:
    tickets = [an_appointment(1, time="09:10"), a_walk_in(2, at="09:20", priority=1)]
    assert order_at("09:30", *tickets) == [2, 1]


def test_due_appointment_goes_before_earlier_walk_in() -> None:
    tickets = [a_walk_in(1, at="08:30"), an_appointment(2, arrived="09:05", time="09:10")]
    assert order_at("09:10", *tickets) == [2, 1]


def test_due_appointments_go_by_appointment_time_not_arrival() -> None:
    tickets = [
        an_appointment(1, arrived="08:50", time="09:20"),
        an_appointment(2, arrived="09:15", time="09:10"),
    ]
    assert order_at("09:20", *tickets) == [2, 1]


def test_appointment_not_yet_due_waits_by_arrival() -> None:
    tickets = [
        a_walk_in(1, at="08:50"),
        an_appointment(2, arrived="08:55", time="09:30"),
        a_walk_in(3, at="09:00"),
    ]
    assert order_at("09:10", *tickets) == [1, 2, 3]


def test_appointment_is_due_two_minutes_before_its_time() -> None:
    appointment = an_appointment(1, time="09:10")
    assert not is_due(appointment, instant("09:07"), RULES)
    assert is_due(appointment, instant("09:08"), RULES)
    assert order_at("09:07", a_walk_in(2, at="08:30"), appointment) == [2, 1]
    assert order_at("09:08", a_walk_in(2, at="08:30"), appointment) == [1, 2]


def test_grace_window_is_configurable() -> None:
    rules = OrderRules(due_grace=timedelta(0))
    assert not is_due(an_appointment(1, time="09:10"), instant("09:09"), rules)
    assert is_due(an_appointment(1, time="09:10"), instant("09:10"), rules)


def test_a_walk_in_is_never_due() -> None:
    assert not is_due(a_walk_in(1), instant("18:00"), RULES)


def test_with_an_advantage_a_walk_in_who_waited_longer_is_not_overtaken() -> None:
    rules = OrderRules(appointment_advantage=timedelta(minutes=15))
    tickets = [
        a_walk_in(1, at="08:50"),  # waited longer than the appointment's 15 minutes
        a_walk_in(2, at="09:00"),
        an_appointment(3, arrived="09:05", time="09:10"),  # ranks as if arrived 08:55
    ]
    assert order_at("09:10", *tickets, rules=rules) == [1, 3, 2]


def test_with_an_advantage_an_early_arrival_keeps_its_place() -> None:
    rules = OrderRules(appointment_advantage=timedelta(minutes=5))
    tickets = [an_appointment(1, arrived="08:40", time="09:10"), a_walk_in(2, at="08:50")]
    assert order_at("09:10", *tickets, rules=rules) == [1, 2]


def test_ties_go_to_the_earlier_arrival_then_the_lower_id() -> None:
    tickets = [
        an_appointment(3, arrived="09:01", time="09:10"),
        an_appointment(2, arrived="09:02", time="09:10"),
        an_appointment(1, arrived="09:02", time="09:10"),
    ]
    assert order_at("09:10", *tickets) == [3, 1, 2]


def test_a_ticket_id_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="twice"):
        call_order([a_walk_in(1), a_walk_in(1, at="09:05")], instant("09:10"), RULES)


def test_a_ticket_for_no_service_is_refused() -> None:
    with pytest.raises(ValueError, match="no service"):
        a_walk_in(1, services="")


def test_negative_weights_are_refused() -> None:
    with pytest.raises(ValueError):
        OrderRules(due_grace=timedelta(minutes=-1))
    with pytest.raises(ValueError):
        OrderRules(appointment_advantage=timedelta(minutes=-1))


# Which counter calls whom


def test_counter_gets_only_tickets_for_services_it_serves() -> None:
    tickets = [a_walk_in(1, services="C"), a_walk_in(2, at="09:05", services="A")]
    assert next_for(a_desk(serves="AB"), tickets, instant("09:10"), RULES) == tickets[1]


def test_ticket_for_several_services_needs_a_counter_serving_all_of_them() -> None:
    both = a_walk_in(1, services="AB")
    assert can_serve(frozenset("AB"), both)
    assert can_serve(frozenset("ABC"), both)
    assert not can_serve(frozenset("A"), both)
    later = a_walk_in(2, at="09:05", services="A")
    assert next_for(a_desk(serves="A"), [both, later], instant("09:10"), RULES) == later
    assert next_for(a_desk(serves="AB"), [both, later], instant("09:10"), RULES) == both


def test_counter_with_nobody_to_call_gets_none() -> None:
    assert (
        next_for(a_desk(serves="A"), [a_walk_in(1, services="B")], instant("09:10"), RULES) is None
    )
    assert next_for(a_desk(serves="A"), [], instant("09:10"), RULES) is None


def test_a_paused_counter_calls_nobody_but_keeps_its_line() -> None:
    paused = a_desk(serves="A", open=False)
    tickets = [a_walk_in(1)]
    assert next_for(paused, tickets, instant("09:10"), RULES) is None
    assert desk_line(paused, tickets, instant("09:10"), RULES) == tickets


def test_desk_line_is_the_call_order_of_what_it_may_call() -> None:
    tickets = [
        a_walk_in(1, at="08:50", services="C"),
        a_walk_in(2, at="09:00"),
        an_appointment(3, time="09:10", services="B"),
    ]
    assert ids(desk_line(a_desk(serves="AB"), tickets, instant("09:10"), RULES)) == [3, 2]


# People ahead


def test_people_ahead_counts_the_line_of_one_counter() -> None:
    tickets = [a_walk_in(1, at="09:00"), a_walk_in(2, at="09:01"), a_walk_in(3, at="09:02")]
    assert people_ahead(tickets, [a_desk()], instant("09:10"), RULES) == {1: 0, 2: 1, 3: 2}


def test_people_ahead_with_two_counters_of_different_services() -> None:
    tickets = [
        a_walk_in(1, at="09:00", services="A"),
        a_walk_in(2, at="09:01", services="B"),
        a_walk_in(3, at="09:02", services="A"),
        a_walk_in(4, at="09:03", services="B"),
    ]
    desks = [a_desk("1", serves="A"), a_desk("2", serves="B")]
    assert people_ahead(tickets, desks, instant("09:10"), RULES) == {1: 0, 2: 0, 3: 1, 4: 1}


def test_people_ahead_counts_the_best_counter_line() -> None:
    # counter 1 serves A and B, counter 2 only A: an A ticket counts only the A tickets before
    # it, as counter 2 would reach it after those
    tickets = [
        a_walk_in(1, at="09:00", services="B"),
        a_walk_in(2, at="09:01", services="B"),
        a_walk_in(3, at="09:02", services="A"),
    ]
    desks = [a_desk("1", serves="AB"), a_desk("2", serves="A")]
    assert people_ahead(tickets, desks, instant("09:10"), RULES) == {1: 0, 2: 1, 3: 0}


def test_people_ahead_of_a_multi_service_ticket_counts_its_full_counters_line() -> None:
    tickets = [
        a_walk_in(1, at="09:00", services="A"),
        a_walk_in(2, at="09:01", services="AB"),
    ]
    desks = [a_desk("1", serves="A"), a_desk("2", serves="AB")]
    assert people_ahead(tickets, desks, instant("09:10"), RULES)[2] == 1


def test_pausing_a_counter_raises_nobodys_count() -> None:
    tickets = [a_walk_in(1, services="A"), a_walk_in(2, at="09:01", services="A")]
    open_counters = [a_desk("1", serves="A"), a_desk("2", serves="A")]
    one_paused = [a_desk("1", serves="A"), a_desk("2", serves="A", open=False)]
    assert people_ahead(tickets, one_paused, instant("09:10"), RULES) == people_ahead(
        tickets, open_counters, instant("09:10"), RULES
    )


def test_a_ticket_no_counter_serves_counts_everybody_before_it() -> None:
    tickets = [a_walk_in(1, at="09:00"), a_walk_in(2, at="09:01", services="C")]
    assert people_ahead(tickets, [a_desk(serves="A")], instant("09:10"), RULES) == {1: 0, 2: 1}


def test_an_appointment_becoming_due_enters_ahead() -> None:
    tickets = [a_walk_in(1, at="08:50"), an_appointment(2, arrived="09:00", time="09:10")]
    assert people_ahead(tickets, [a_desk()], instant("09:07"), RULES) == {1: 0, 2: 1}
    assert people_ahead(tickets, [a_desk()], instant("09:08"), RULES) == {1: 1, 2: 0}


# Waiting time


def test_nobody_ahead_means_no_wait() -> None:
    eta = estimated_wait_minutes([a_walk_in(1)], [a_desk()], instant("09:10"), RULES, MINUTES)
    assert eta == {1: 0}


def test_wait_is_the_work_ahead_shared_by_the_open_counters() -> None:
    tickets = [a_walk_in(i, at=f"09:0{i}") for i in range(1, 5)]  # A tickets of 10 minutes
    one = estimated_wait_minutes(tickets, [a_desk("1")], instant("09:10"), RULES, MINUTES)
    two = estimated_wait_minutes(
        tickets, [a_desk("1"), a_desk("2")], instant("09:10"), RULES, MINUTES
    )
    assert one == {1: 0, 2: 10, 3: 20, 4: 30}
    assert two == {1: 0, 2: 5, 3: 10, 4: 15}


def test_a_paused_counter_does_not_shorten_the_wait() -> None:
    tickets = [a_walk_in(1), a_walk_in(2, at="09:01")]
    desks = [a_desk("1"), a_desk("2", open=False)]
    assert estimated_wait_minutes(tickets, desks, instant("09:10"), RULES, MINUTES) == {1: 0, 2: 10}


def test_first_in_a_paused_counters_line_still_waits_for_the_open_counters_line() -> None:
    # counter 2 would call ticket 2 next (nobody ahead), but only counter 1 is open
    tickets = [a_walk_in(1, services="C"), a_walk_in(2, at="09:01", services="A")]
    desks = [a_desk("1", serves="AC"), a_desk("2", serves="A", open=False)]
    assert people_ahead(tickets, desks, instant("09:10"), RULES)[2] == 0
    assert estimated_wait_minutes(tickets, desks, instant("09:10"), RULES, MINUTES)[2] == 20


def test_a_ticket_for_several_services_takes_their_minutes_together() -> None:
    tickets = [a_walk_in(1, services="AB"), a_walk_in(2, at="09:01", services="AB")]
    eta = estimated_wait_minutes(tickets, [a_desk()], instant("09:10"), RULES, MINUTES)
    assert eta[2] == 16


def test_wait_is_rounded_up_to_whole_minutes() -> None:
    tickets = [a_walk_in(1, services="B"), a_walk_in(2, at="09:01")]
    desks = [a_desk("1"), a_desk("2"), a_desk("3"), a_desk("4")]
    assert estimated_wait_minutes(tickets, desks, instant("09:10"), RULES, MINUTES)[2] == 2  # 6 / 4


def test_no_open_counter_means_the_wait_is_unknown() -> None:
    tickets = [a_walk_in(1, services="A"), a_walk_in(2, services="C")]
    desks = [a_desk("1", serves="A", open=False), a_desk("2", serves="AC", open=False)]
    eta = estimated_wait_minutes(tickets, desks, instant("09:10"), RULES, MINUTES)
    assert eta == {1: None, 2: None}


def test_work_in_progress_at_the_counters_adds_to_the_wait() -> None:
    tickets = [a_walk_in(1), a_walk_in(2, at="09:01")]
    serving = {"1": Serving(frozenset("C"), called_at=instant("09:05"))}  # 20 minutes, 15 left
    eta = estimated_wait_minutes(tickets, [a_desk("1")], instant("09:10"), RULES, MINUTES, serving)
    assert eta == {1: 15, 2: 25}


def test_an_overdue_service_adds_nothing() -> None:
    serving = {"1": Serving(frozenset("A"), called_at=instant("08:00"))}
    eta = estimated_wait_minutes(
        [a_walk_in(1)], [a_desk("1")], instant("09:10"), RULES, MINUTES, serving
    )
    assert eta == {1: 0}


def test_a_service_without_minutes_is_an_error() -> None:
    with pytest.raises(KeyError, match="'D'"):
        estimated_wait_minutes(
            [a_walk_in(1, services="D"), a_walk_in(2, at="09:01", services="D")],
            [a_desk(serves="D")],
            instant("09:10"),
            RULES,
            MINUTES,
        )


def test_service_minutes_are_the_average_of_the_most_recent_first() -> None:
    history = {"A": [8.0, 12.0, 30.0], "B": []}  # newest first
    minutes = rolling_service_minutes(history, {"A": 10.0, "B": 6.0, "C": 20.0}, window=2)
    assert minutes == {"A": 10.0, "B": 6.0, "C": 20.0}
    assert rolling_service_minutes({"A": [4.0, 8.0]}, {"A": 10.0}) == {"A": 6.0}


def test_service_minutes_without_configuration_come_from_history_alone() -> None:
    assert rolling_service_minutes({"D": [5.0]}, {}) == {"D": 5.0}
    with pytest.raises(ValueError):
        rolling_service_minutes({}, {}, window=0)


# When the order changes by itself


def test_next_due_change_is_when_the_next_appointment_becomes_due() -> None:
    tickets = [
        a_walk_in(1),
        an_appointment(2, time="09:30"),
        an_appointment(3, time="09:20"),
        an_appointment(4, time="09:05"),  # due already
    ]
    assert next_due_change(tickets, instant("09:10"), RULES) == instant("09:18")
    assert is_due(tickets[2], instant("09:18"), RULES)


def test_next_due_change_is_strictly_after_now() -> None:
    tickets = [an_appointment(1, time="09:20"), an_appointment(2, time="09:30")]
    assert next_due_change(tickets, instant("09:18"), RULES) == instant("09:28")


def test_no_appointment_to_become_due_means_no_timer() -> None:
    assert (
        next_due_change([a_walk_in(1), an_appointment(2, time="09:00")], instant("09:10"), RULES)
        is None
    )
    assert next_due_change([], instant("09:10"), RULES) is None
