"""The login page: a session cookie for the right password, a clear error tied to the field for
a wrong one, sign-out, expiry, and sign-ins logged without their passwords."""

from __future__ import annotations

import logging

from sqlalchemy import select

from aufruf.auth.guards import SESSION_COOKIE
from aufruf.auth.model import StaffSession
from tests.auth.conftest import CLERK_PASSWORD, hidden_field, sign_in


async def test_signing_in_sets_an_httponly_session_cookie_and_me_answers(browser, clerk):
    desk = browser()

    answer = await sign_in(desk, "anna", CLERK_PASSWORD)

    assert answer.status_code == 303
    cookie = next(h for h in answer.headers.get_list("set-cookie") if SESSION_COOKIE in h)
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Secure" not in cookie  # plain http here
    me = await desk.get("/api/v1/me")
    assert me.status_code == 200
    assert me.json() == {
        "kind": "user",
        "name": "anna",
        "role": "clerk",
        "locations": ["amt"],
        "counter": None,
        "kiosk": None,
        "printer": None,
    }


async def test_user_names_are_not_case_sensitive(browser, clerk):
    answer = await sign_in(browser(), "  Anna ", CLERK_PASSWORD)

    assert answer.status_code == 303


async def test_the_cookie_is_secure_when_the_request_came_over_https(app, clerk):
    import httpx

    transport = httpx.ASGITransport(app=app, client=("198.51.100.10", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as desk:
        answer = await sign_in(desk, "anna", CLERK_PASSWORD)

    cookie = next(h for h in answer.headers.get_list("set-cookie") if SESSION_COOKIE in h)
    assert "Secure" in cookie


async def test_wrong_password_is_refused_with_the_error_tied_to_the_password_field(browser, clerk):
    desk = browser()

    answer = await sign_in(desk, "anna", "not the password")

    assert answer.status_code == 401
    assert SESSION_COOKIE not in answer.headers.get("set-cookie", "")
    page = answer.text
    assert 'aria-describedby="password-error"' in page
    assert 'aria-invalid="true"' in page
    assert 'id="password-error">Benutzername oder Passwort ist falsch.<' in page
    assert 'value="anna"' in page  # the name is kept, the password is not
    assert "not the password" not in page
    assert (await desk.get("/api/v1/me")).status_code == 401


async def test_an_empty_user_name_is_tied_to_the_user_name_field(browser, clerk):
    answer = await sign_in(browser(), "", CLERK_PASSWORD)

    assert answer.status_code == 400
    assert 'aria-describedby="username-error"' in answer.text
    assert 'id="username-error"' in answer.text


async def test_the_login_form_without_its_csrf_token_is_refused(browser, clerk):
    desk = browser()
    await desk.get("/login")

    answer = await desk.post("/login", data={"username": "anna", "password": CLERK_PASSWORD})

    assert answer.status_code == 403
    assert "Das Formular war abgelaufen" in answer.text
    assert (await desk.get("/api/v1/me")).status_code == 401


async def test_logout_ends_the_session(browser, db, clerk):
    desk = browser()
    await sign_in(desk, "anna", CLERK_PASSWORD)
    page = await desk.get("/login")
    assert "anna" in page.text  # "signed in as anna", with a sign-out button
    answer = await desk.post(
        "/logout", data={"_csrf_token": hidden_field(page.text, "_csrf_token")}
    )

    assert answer.status_code == 303
    assert answer.headers["location"] == "/login"
    assert (await desk.get("/api/v1/me")).status_code == 401
    async with db.read() as session:
        assert (await session.scalars(select(StaffSession))).all() == []


async def test_logout_without_the_csrf_token_keeps_the_session(browser, clerk):
    desk = browser()
    await sign_in(desk, "anna", CLERK_PASSWORD)

    answer = await desk.post("/logout")

    assert answer.status_code == 403
    assert (await desk.get("/api/v1/me")).status_code == 200


async def test_a_session_expires_after_twelve_idle_hours(browser, clock, clerk):
    desk = browser()
    await sign_in(desk, "anna", CLERK_PASSWORD)

    clock.advance(hours=11)
    assert (await desk.get("/api/v1/me")).status_code == 200  # in use: moved on
    clock.advance(hours=11)
    assert (await desk.get("/api/v1/me")).status_code == 200
    clock.advance(hours=12, minutes=1)
    assert (await desk.get("/api/v1/me")).status_code == 401


async def test_a_session_ends_a_day_after_sign_in_even_when_in_use(browser, clock, clerk):
    desk = browser()
    await sign_in(desk, "anna", CLERK_PASSWORD)

    for _ in range(4):
        clock.advance(hours=5)
        assert (await desk.get("/api/v1/me")).status_code == 200
    clock.advance(hours=5)
    assert (await desk.get("/api/v1/me")).status_code == 401


async def test_after_sign_in_the_browser_goes_where_it_came_from_but_never_elsewhere(
    browser, clerk
):
    back = await sign_in(browser(), "anna", CLERK_PASSWORD, next_path="/desk?counter=amt-1")
    elsewhere = await sign_in(browser(), "anna", CLERK_PASSWORD, next_path="//evil.example/x")

    assert back.headers["location"] == "/desk?counter=amt-1"
    assert elsewhere.headers["location"] == "/desk"


async def test_sign_ins_are_logged_without_passwords(browser, clerk, caplog):
    caplog.set_level(logging.INFO, logger="aufruf.auth")

    await sign_in(browser(), "anna", "a wrong guess 123")
    await sign_in(browser(), "anna", CLERK_PASSWORD)
    await sign_in(browser(), "correct horse battery", "typed into the wrong field")

    assert "sign-in failed for anna from 198.51.100.10" in caplog.text
    assert "signed in: anna (clerk) from 198.51.100.10" in caplog.text
    assert "sign-in failed for (unknown account)" in caplog.text
    for secret in ("a wrong guess 123", CLERK_PASSWORD, "typed into the wrong field"):
        assert secret not in caplog.text


async def test_a_page_sends_a_stranger_to_the_login_and_back_afterwards(browser, clerk):
    desk = browser()

    away = await desk.get("/test/page?counter=amt-1")
    page = await desk.get(away.headers["location"])
    token = hidden_field(page.text, "_csrf_token")
    signed_in = await desk.post(
        "/login",
        data={
            "_csrf_token": token,
            "username": "anna",
            "password": CLERK_PASSWORD,
            "next": hidden_field(page.text, "next"),
        },
    )

    assert away.status_code == 303
    assert away.headers["location"] == "/login?next=%2Ftest%2Fpage%3Fcounter%3Damt-1"
    assert signed_in.headers["location"] == "/test/page?counter=amt-1"
    assert (await desk.get("/test/page")).text == "<p>anna</p>"


async def test_a_page_form_without_the_csrf_token_gets_a_clear_403_page(browser, clerk):
    desk = browser()
    await sign_in(desk, "anna", CLERK_PASSWORD)

    answer = await desk.post("/test/page", data={"note": "hello"})

    assert answer.status_code == 403
    assert answer.headers["content-type"].startswith("text/html")
    assert "Das Formular war abgelaufen" in answer.text
