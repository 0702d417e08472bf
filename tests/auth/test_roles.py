"""The role table of aufruf.auth.logic, as a person would check it."""

from __future__ import annotations

import pytest

from aufruf.auth.logic import ACTIONS, Actor, safe_next, throttle_wait
from aufruf.errors import Forbidden


def an_actor(role: str, locations=frozenset({"amt"}), **binding) -> Actor:
    kind = "user" if role in ("clerk", "supervisor", "admin") else "token"
    return Actor(kind=kind, id=1, name=role, role=role, locations=locations, **binding)


ALLOWED = {
    "admin": set(ACTIONS),
    "supervisor": set(ACTIONS) - {"admin"},
    "clerk": {
        "counter",
        "queue.read",
        "booking.staff",
        "ticket.draw",
        "ticket.manage",
        "display.read",
    },
    "kiosk": {"ticket.draw"},
    "display": {"display.read"},
    "printer": {"printer.connect"},
}


@pytest.mark.parametrize("role", sorted(ALLOWED))
@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_each_role_may_do_what_the_table_says_and_nothing_else(role, action):
    assert an_actor(role).may(action) == (action in ALLOWED[role])


def test_a_clerk_acts_only_at_their_locations():
    clerk = an_actor("clerk", frozenset({"amt", "nebenstelle"}))

    clerk.require("counter", location="nebenstelle")
    with pytest.raises(Forbidden, match="not allowed at location zulassung"):
        clerk.require("counter", location="zulassung")


def test_an_admin_without_locations_acts_everywhere():
    an_actor("admin", None).require("location.manage", location="anywhere")


def test_a_token_bound_to_a_counter_acts_only_there():
    desk = an_actor("clerk", counter="amt-3")

    desk.require("counter", location="amt", counter="amt-3")
    with pytest.raises(Forbidden, match="belongs to counter amt-3, not to amt-4"):
        desk.require("counter", location="amt", counter="amt-4")


def test_a_printer_token_prints_only_for_its_printer():
    printer = an_actor("printer", printer="amt-printer")

    printer.require("printer.connect", location="amt", printer="amt-printer")
    with pytest.raises(Forbidden):
        printer.require("printer.connect", location="amt", printer="amt-printer-2")


def test_a_kiosk_may_draw_tickets_but_not_call_them():
    kiosk = an_actor("kiosk", kiosk="amt-kiosk")

    kiosk.require("ticket.draw", location="amt", kiosk="amt-kiosk")
    with pytest.raises(Forbidden, match=r"The role kiosk may not act at a counter\."):
        kiosk.require("counter", location="amt")


def test_require_role_names_the_roles_needed():
    with pytest.raises(Forbidden, match="needs the role supervisor or admin; yours is clerk"):
        an_actor("clerk").require_role("supervisor", "admin")


def test_an_unknown_action_is_a_programming_error():
    with pytest.raises(ValueError, match="unknown action"):
        an_actor("admin").require("fly")


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/desk", "/desk"),
        ("/desk?counter=amt-1", "/desk?counter=amt-1"),
        ("//evil.example", "/start"),
        ("/\\evil.example", "/start"),
        ("https://evil.example/", "/start"),
        ("javascript:alert(1)", "/start"),
        ("", "/start"),
        (None, "/start"),
    ],
)
def test_after_sign_in_only_paths_of_this_site_are_followed(target, expected):
    assert safe_next(target, "/start") == expected


def test_throttle_ignores_the_account_count_at_a_known_address():
    from datetime import UTC, datetime

    from aufruf.auth.logic import Window

    now = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    hammered = Window(start=now, failures=500)

    at_desk = throttle_wait(pair=None, address=None, account=hammered, known_address=True, now=now)
    elsewhere = throttle_wait(
        pair=None, address=None, account=hammered, known_address=False, now=now
    )

    assert at_desk == 0
    assert elsewhere == 15 * 60
