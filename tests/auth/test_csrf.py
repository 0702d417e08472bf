"""CSRF: a session-authenticated unsafe request needs the session's token; a Bearer request
does not."""

from __future__ import annotations

import re

from tests.auth.conftest import CLERK_PASSWORD, a_token, sign_in


async def _signed_in(browser):
    desk = browser()
    await sign_in(desk, "anna", CLERK_PASSWORD)
    page = await desk.get("/login")
    token = re.search(r'<meta name="csrf-token" content="([^"]+)">', page.text).group(1)
    return desk, token


async def test_a_session_post_without_the_token_is_403(browser, clerk):
    desk, _ = await _signed_in(browser)

    answer = await desk.post("/test/whoami", json={})

    assert answer.status_code == 403
    assert answer.json()["reason"] == "csrf"
    assert "CSRF token" in answer.json()["detail"]


async def test_a_session_post_with_a_wrong_token_is_403(browser, clerk):
    desk, token = await _signed_in(browser)

    answer = await desk.post("/test/whoami", headers={"X-CSRF-Token": token[:-2] + "xx"})

    assert answer.status_code == 403


async def test_a_session_post_with_the_token_in_the_header_works(browser, clerk):
    desk, token = await _signed_in(browser)

    answer = await desk.post("/test/whoami", json={}, headers={"X-CSRF-Token": token})

    assert answer.status_code == 201
    assert answer.json() == {"name": "anna", "csrf_ok": True}


async def test_a_form_post_with_the_token_field_works(browser, clerk):
    desk, token = await _signed_in(browser)

    answer = await desk.post("/test/whoami", data={"_csrf_token": token})

    assert answer.status_code == 201


async def test_a_session_get_needs_no_token(browser, clerk):
    desk, _ = await _signed_in(browser)

    answer = await desk.get("/test/whoami")

    assert answer.json() == {"name": "anna", "csrf_ok": False}


async def test_the_token_of_one_session_does_not_fit_another(browser, db, clock, clerk):
    _, token = await _signed_in(browser)
    other = browser()
    await sign_in(other, "anna", CLERK_PASSWORD)

    answer = await other.post("/test/whoami", headers={"X-CSRF-Token": token})

    assert answer.status_code == 403


async def test_a_bearer_request_needs_no_csrf_token(browser, db, clock, location):
    token = await a_token(db, clock, "clerk", location="amt")

    answer = await browser().post("/test/whoami", headers={"Authorization": f"Bearer {token}"})

    assert answer.status_code == 201
    assert answer.json()["csrf_ok"] is True


async def test_with_a_bearer_header_the_session_cookie_is_ignored(browser, clerk):
    desk, _ = await _signed_in(browser)

    answer = await desk.post("/test/whoami", headers={"Authorization": "Bearer not-a-token"})

    assert answer.status_code == 401
