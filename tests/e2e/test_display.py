"""The wall display in a real browser (headless Chromium) against a real server: a call shows
large with its counter and is announced; the token is kept and cut from the address; the
counters layout and portrait; sound off until a tap; the display comes back by itself after the
server restarts; axe-core finds nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from aufruf import migrate
from aufruf.auth.service import create_token
from aufruf.clock import FixedClock
from aufruf.db import Database
from aufruf.offices.model import Kiosk
from aufruf.settings import Settings
from tests.builders import a_location
from tests.conftest import SECRET
from tests.display.live import SilentLink, free_port, live_server
from tests.e2e.conftest import axe_violations, need_chromium

WAIT_SECONDS = 20


async def _prepare(url: str, clock: FixedClock) -> dict[str, str]:
    db = Database(url)
    try:
        await migrate.upgrade(db.engine)
        await a_location(db, "amt", services={"pass": 10, "other": 10}, counters=3)
        async with db.write() as session:
            session.add(Kiosk(id="amt-kiosk", location_id="amt", name="Eingang", active=True))
            await session.flush()
            now = clock.now()
            tokens = {
                "kiosk": (await create_token(session, now, role="kiosk", location="amt")).token,
                "display": (
                    await create_token(session, now, role="display", location="amt", name="Wand")
                ).token,
            }
            for n in (1, 2):
                clerk = await create_token(
                    session, now, role="clerk", location="amt", counter=f"amt-{n}"
                )
                tokens[f"clerk-{n}"] = clerk.token
        return tokens
    finally:
        await db.dispose()


@dataclass(frozen=True)
class Office:
    settings: Settings
    clock: FixedClock
    tokens: dict[str, str]

    def draw(self, base: str, service: str = "pass") -> dict:
        drawn = httpx.post(
            f"{base}/api/v1/locations/amt/tickets",
            json={"service": service},
            headers={"Authorization": f"Bearer {self.tokens['kiosk']}"},
            timeout=WAIT_SECONDS,
            trust_env=False,
        )
        assert drawn.status_code == 201, drawn.text
        return drawn.json()

    def call_next(self, base: str, counter: int = 1) -> dict:
        auth = {"Authorization": f"Bearer {self.tokens[f'clerk-{counter}']}"}
        with httpx.Client(base_url=base, timeout=WAIT_SECONDS, trust_env=False) as http:
            assert http.post(f"/api/v1/counters/amt-{counter}/open", headers=auth).is_success
            called = http.post(f"/api/v1/counters/amt-{counter}/call-next", headers=auth)
        assert called.status_code == 200, called.text
        return called.json()


@pytest.fixture
def office(tmp_path: Path) -> Office:
    need_chromium()
    clock = FixedClock(datetime(2026, 11, 23, 8, 0, tzinfo=UTC))  # Monday 09:00 in Berlin
    url = f"sqlite+aiosqlite:///{tmp_path / 'aufruf.db'}"
    tokens = asyncio.run(_prepare(url, clock))
    settings = Settings(database_url=url, secret_key=SECRET, booking_rate_limit=0)
    return Office(settings, clock, tokens)


@pytest.fixture
def server(office: Office) -> Iterator[str]:
    with live_server(office.settings, office.clock) as base:
        yield base


def waiter(browser):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, WAIT_SECONDS)


def shown(browser, element_id: str) -> str | None:
    """The element's text; None while the page has no such element (e.g. during a load)."""
    return browser.execute_script(
        "const e = document.getElementById(arguments[0]); return e ? e.textContent : null",
        element_id,
    )


def online(browser) -> bool:
    return browser.execute_script("return !!(window.aufrufDisplay && aufrufDisplay.online)")


def open_display(browser, base: str, query: str = "") -> None:
    browser.get(f"{base}/display/amt{query}")
    waiter(browser).until(online)


def announced(browser) -> list[str]:
    return browser.execute_script("return window.aufrufDisplay.announced.slice()")


def test_a_call_shows_large_with_its_counter_and_is_announced(
    browser_factory, office, server, tmp_path
):
    from selenium.webdriver.common.by import By

    browser = browser_factory(width=1920, height=1080)
    open_display(browser, server, f"?token={office.tokens['display']}")
    office.draw(server)
    office.draw(server, "other")
    waiter(browser).until(lambda b: shown(b, "waiting").split() == ["Other", "1", "Pass", "1"])

    called = office.call_next(server)
    waiter(browser).until(lambda b: shown(b, "call-number") == called["number"])
    screenshot = tmp_path / "display-after-call.png"
    browser.save_screenshot(str(screenshot))

    assert screenshot.stat().st_size > 10_000
    area = browser.find_element(By.ID, "call")
    assert area.is_displayed()
    assert area.find_element(By.ID, "call-number").text == "A001"
    assert area.find_element(By.ID, "call-counter").text == "Platz 1"
    size = float(area.find_element(By.ID, "call-number").value_of_css_property("font-size")[:-2])
    assert size >= 150  # readable across a waiting room (px at 1920x1080)
    assert "fresh" in area.get_attribute("class")  # blinks for a few seconds
    assert announced(browser) == ["Nummer A 1, bitte zu Platz 1"]
    assert shown(browser, "waiting").split() == ["Other", "1", "Pass", "0"]
    assert "Standort amt" in browser.find_element(By.CSS_SELECTOR, "h1").text
    assert ":" in shown(browser, "clock")

    # the token registered the device, was kept, and left the address
    assert "token" not in browser.current_url
    key = "aufruf.display.token:amt"
    assert (
        browser.execute_script(f"return localStorage.getItem('{key}')") == office.tokens["display"]
    )
    staff = {"Authorization": f"Bearer {office.tokens['clerk-1']}"}
    seen = httpx.get(f"{server}/api/v1/locations/amt/displays", headers=staff, trust_env=False)
    assert [(d["name"], d["connections"]) for d in seen.json()] == [("Wand", 1)]
    assert office.tokens["display"] not in browser.page_source


def test_the_last_calls_stay_beneath_and_only_a_few_are_kept(browser_factory, office, server):
    browser = browser_factory(width=1920, height=1080)
    open_display(browser, server, "?speak=de,en")
    for _ in range(10):
        office.draw(server)
    numbers = [office.call_next(server, 1 + n % 2)["number"] for n in range(10)]
    waiter(browser).until(lambda b: shown(b, "call-number") == numbers[-1])

    rows = browser.execute_script(
        "return [...document.querySelectorAll('#recent li:not([hidden]) .recent-number')]"
        ".map(e => e.textContent)"
    )
    assert rows == list(reversed(numbers[2:9]))  # the seven before the newest
    assert len(browser.execute_script("return aufrufDisplay.calls()")) == 8
    assert announced(browser)[-2:] == [
        "Nummer A 10, bitte zu Platz 2",
        "Number A 10, please go to Platz 2",
    ]


def test_a_column_per_counter(browser_factory, office, server):
    browser = browser_factory(width=1920, height=1080)
    open_display(browser, server, "?layout=counters")
    office.draw(server)
    office.draw(server)
    first = office.call_next(server, 1)
    second = office.call_next(server, 2)

    def column(b, name):
        return b.execute_script(
            "return document.querySelector(`.counter-column[data-counter='${arguments[0]}']"
            " .counter-number`).textContent",
            name,
        )

    waiter(browser).until(lambda b: column(b, "Platz 2") == second["number"])
    assert column(browser, "Platz 1") == first["number"]
    assert column(browser, "Platz 3") == "–"
    assert announced(browser) == [
        "Nummer A 1, bitte zu Platz 1",
        "Nummer A 2, bitte zu Platz 2",
    ]


def test_portrait_puts_the_last_calls_under_the_newest_call(browser_factory, office, server):
    from selenium.webdriver.common.by import By

    browser = browser_factory(width=1080, height=1920)
    open_display(browser, server)
    call = browser.find_element(By.ID, "call").rect
    recent = browser.find_element(By.CSS_SELECTOR, ".wall-recent").rect
    waiting = browser.find_element(By.CSS_SELECTOR, ".wall-waiting").rect
    assert recent["y"] >= call["y"] + call["height"]
    assert waiting["y"] >= recent["y"] + recent["height"]
    assert call["width"] > 900


def test_sound_is_off_until_a_tap(browser_factory, office, server):
    from selenium.webdriver.common.by import By

    browser = browser_factory()
    open_display(browser, server)
    control = browser.find_element(By.ID, "sound")
    assert browser.execute_script("return aufrufDisplay.audioState()") == "suspended"
    assert control.is_displayed()  # a page nobody touched may not play sound
    assert control.text == "Ton aus – zum Einschalten tippen"

    control.click()
    waiter(browser).until(
        lambda b: b.execute_script("return aufrufDisplay.audioState()") == "running"
    )
    if browser.execute_script("return speechSynthesis.getVoices().length") == 0:
        # the gong plays now, but without a voice the display still says that sound is off
        assert control.text == "Ton aus: keine Stimme für die Ansage installiert"
    else:
        waiter(browser).until(lambda b: not control.is_displayed())


def test_the_display_comes_back_after_the_server_restarts(browser_factory, office):
    from selenium.webdriver.common.by import By

    browser = browser_factory(width=1920, height=1080)
    port = free_port()
    with live_server(office.settings, office.clock, port=port) as base:
        open_display(browser, base)
        office.draw(base)
        office.draw(base)
        first = office.call_next(base)
        waiter(browser).until(lambda b: shown(b, "call-number") == first["number"])

    waiter(browser).until(lambda b: not online(b))
    assert browser.find_element(By.ID, "offline").is_displayed()
    snapshots = browser.execute_script("return aufrufDisplay.snapshots")

    with live_server(office.settings, office.clock, port=port) as base:
        again = office.call_next(base)  # made while the display may still be reconnecting
        waiter(browser).until(lambda b: shown(b, "call-number") == again["number"])
        waiter(browser).until(online)
        assert not browser.find_element(By.ID, "offline").is_displayed()
        assert browser.execute_script("return aufrufDisplay.snapshots") > snapshots
        assert shown(browser, "call-counter") == "Platz 1"


def test_a_link_that_falls_silent_is_dropped_and_opened_again(browser_factory, office, server):
    """The link carries nothing and nothing closes it: the display's periodic check (handed
    a time past its limit of silence) drops it and says it is offline, and once the link
    carries again it shows the call it missed."""
    from selenium.webdriver.common.by import By

    link = SilentLink(int(server.rsplit(":", 1)[1]))
    try:
        browser = browser_factory(width=1920, height=1080)
        open_display(browser, f"http://127.0.0.1:{link.port}")
        office.draw(server)
        office.draw(server)
        first = office.call_next(server)
        waiter(browser).until(lambda b: shown(b, "call-number") == first["number"])
        with link.silent():
            missed = office.call_next(server)
            browser.execute_script("aufrufDisplay.keepAlive(Date.now() + 1000)")
            assert online(browser)  # heard a second ago: only a ping
            browser.execute_script("aufrufDisplay.keepAlive(Date.now() + 46000)")
            assert not online(browser)
            waiter(browser).until(lambda b: b.find_element(By.ID, "offline").is_displayed())
            assert shown(browser, "call-number") == first["number"]
        waiter(browser).until(lambda b: shown(b, "call-number") == missed["number"])
        waiter(browser).until(online)
        assert not browser.find_element(By.ID, "offline").is_displayed()
    finally:
        link.close()


def test_duplicates_are_dropped_and_a_gap_takes_a_fresh_snapshot(browser_factory, office, server):
    browser = browser_factory(width=1920, height=1080)
    open_display(browser, server)
    office.draw(server)
    called = office.call_next(server)
    waiter(browser).until(lambda b: shown(b, "call-number") == called["number"])
    seq = browser.execute_script("return aufrufDisplay.seq")
    snapshots = browser.execute_script("return aufrufDisplay.snapshots")

    fake = {"type": "called", "number": "Z999", "counter": "Platz 9", "at": "2026-11-23T08:00Z"}
    browser.execute_script("aufrufDisplay.receive(arguments[0])", {**fake, "seq": seq})
    assert shown(browser, "call-number") == called["number"]  # a seq already seen: dropped
    assert announced(browser) == ["Nummer A 1, bitte zu Platz 1"]

    browser.execute_script("aufrufDisplay.receive(arguments[0])", {**fake, "seq": seq + 5})
    waiter(browser).until(lambda b: b.execute_script("return aufrufDisplay.snapshots") > snapshots)
    waiter(browser).until(online)
    assert shown(browser, "call-number") == called["number"]  # never guessed from the gap
    assert browser.execute_script("return aufrufDisplay.seq") == seq
    assert announced(browser) == ["Nummer A 1, bitte zu Platz 1"]


def test_a_revoked_token_is_forgotten_and_the_calls_still_shown(browser_factory, office, server):
    from selenium.webdriver.common.by import By

    browser = browser_factory()
    browser.get(f"{server}/display/amt?token=not-a-valid-token")
    waiter(browser).until(online)
    notice = browser.find_element(By.ID, "notice")
    assert notice.is_displayed()
    assert "gilt nicht mehr" in notice.text
    assert browser.execute_script("return localStorage.getItem('aufruf.display.token:amt')") is None
    office.draw(server)
    called = office.call_next(server)
    waiter(browser).until(lambda b: shown(b, "call-number") == called["number"])


def test_axe_finds_nothing_on_the_display(browser_factory, office, server):
    browser = browser_factory(width=1920, height=1080)
    open_display(browser, server)
    office.draw(server)
    office.call_next(server)
    waiter(browser).until(lambda b: shown(b, "call-number") == "A001")
    assert axe_violations(browser) == []
