"""Throttling failed sign-ins per account and address, such that a stranger cannot lock a clerk
out of their own desk."""

from __future__ import annotations

from tests.auth.conftest import CLERK_PASSWORD, DESK, a_user, sign_in

STRANGER = "203.0.113.66"


async def test_five_wrong_passwords_lock_that_address_out_of_that_account(browser, clerk):
    for _ in range(5):
        assert (await sign_in(browser(STRANGER), "anna", "guess guess")).status_code == 401

    refused = await sign_in(browser(STRANGER), "anna", CLERK_PASSWORD)

    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) == 15 * 60
    assert 'id="password-error">Zu viele fehlgeschlagene Versuche' in refused.text


async def test_the_owner_still_signs_in_from_another_address(browser, clerk):
    for _ in range(6):
        await sign_in(browser(STRANGER), "anna", "guess guess")

    assert (await sign_in(browser(DESK), "anna", CLERK_PASSWORD)).status_code == 303


async def test_the_lock_ends_when_its_window_is_over(browser, clock, clerk):
    for _ in range(5):
        await sign_in(browser(STRANGER), "anna", "guess guess")
    clock.advance(minutes=14)
    assert (await sign_in(browser(STRANGER), "anna", CLERK_PASSWORD)).status_code == 429

    clock.advance(minutes=1)

    assert (await sign_in(browser(STRANGER), "anna", CLERK_PASSWORD)).status_code == 303


async def test_a_stranger_failing_from_many_addresses_cannot_lock_the_clerk_out_of_their_desk(
    browser, clerk
):
    assert (await sign_in(browser(DESK), "anna", CLERK_PASSWORD)).status_code == 303  # usual
    for n in range(50):  # 10 addresses, 5 failures each
        await sign_in(browser(f"203.0.113.{n // 5 + 100}"), "anna", f"guess {n}")

    at_desk = await sign_in(browser(DESK), "anna", CLERK_PASSWORD)
    from_a_new_place = await sign_in(browser("192.0.2.200"), "anna", CLERK_PASSWORD)

    assert at_desk.status_code == 303
    assert from_a_new_place.status_code == 429  # the account is guarded elsewhere meanwhile


async def test_twenty_failures_from_one_address_lock_it_for_every_account(
    browser, db, clock, clerk
):
    await a_user(db, clock, "bert")
    for n in range(20):
        await sign_in(browser(STRANGER), f"someone-{n % 4}", "guess guess")

    assert (await sign_in(browser(STRANGER), "bert", CLERK_PASSWORD)).status_code == 429
    assert (await sign_in(browser(DESK), "bert", CLERK_PASSWORD)).status_code == 303


async def test_a_success_does_not_count_as_a_failure(browser, clerk):
    for _ in range(4):
        await sign_in(browser(DESK), "anna", "typo typo typo")
    assert (await sign_in(browser(DESK), "anna", CLERK_PASSWORD)).status_code == 303

    for _ in range(4):  # the pair starts afresh after a success
        await sign_in(browser(DESK), "anna", "typo typo typo")

    assert (await sign_in(browser(DESK), "anna", CLERK_PASSWORD)).status_code == 303
