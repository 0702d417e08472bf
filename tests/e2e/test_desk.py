"""The clerk's desk in a real browser (headless Chromium through selenium) against a real
server: sign in, take a counter, open it, see a kiosk's ticket arrive live, call it with N,
finish it with D; and a desk that loses its server says so and comes back by itself."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from aufruf import migrate
from aufruf.auth.service import create_token, create_user
from aufruf.booking.model import Appointment, Contact
from aufruf.clock import FixedClock
from aufruf.db import Database
from aufruf.offices.model import Kiosk
from aufruf.settings import Settings
from tests.builders import a_location
from tests.conftest import SECRET
from tests.display.live import free_port, live_server
from tests.e2e.conftest import need_chromium

PASSWORD = "correct horse battery"
WAIT_SECONDS = 20


async def _prepare(url: str, clock: FixedClock) -> str:
    """A migrated database with location "amt", clerk anna and a kiosk token."""
    db = Database(url)
    try:
        await migrate.upgrade(db.engine)
        await a_location(db, "amt", services={"pass": 10, "other": 10}, counters=3)
        async with db.write() as session:
            session.add(Kiosk(id="amt-kiosk", location_id="amt", name="Eingang", active=True))
            await session.flush()
            await create_user(session, clock.now(), "anna", PASSWORD, "clerk", ["amt"])
            kiosk = await create_token(session, clock.now(), role="kiosk", location="amt")
        return kiosk.token
    finally:
        await db.dispose()


@dataclass(frozen=True)
class Office:
    settings: Settings
    clock: FixedClock
    kiosk: str  # a kiosk's bearer token


@pytest.fixture
def office(tmp_path: Path) -> Office:
    """A prepared SQLite database (see _prepare), the settings and the clock to serve it."""
    need_chromium()
    clock = FixedClock(datetime(2026, 11, 23, 8, 0, tzinfo=UTC))  # Monday 09:00 in Berlin
    url = f"sqlite+aiosqlite:///{tmp_path / 'aufruf.db'}"
    kiosk = asyncio.run(_prepare(url, clock))
    return Office(Settings(database_url=url, secret_key=SECRET, booking_rate_limit=0), clock, kiosk)


@pytest.fixture
def server(office: Office) -> Iterator[str]:
    """The base URL of a real server (uvicorn on a free port)."""
    with live_server(office.settings, office.clock) as base:
        yield base


def draw(base: str, office: Office, service: str = "pass") -> str:
    """A kiosk draws a ticket; its number."""
    drawn = httpx.post(
        f"{base}/api/v1/locations/amt/tickets",
        json={"service": service},
        headers={"Authorization": f"Bearer {office.kiosk}"},
        timeout=WAIT_SECONDS,
        trust_env=False,
    )
    assert drawn.status_code == 201, drawn.text
    return drawn.json()["number"]


def take_counter(browser, base: str, counter: str) -> None:
    """Open the desk unsigned, sign in on the way, and take `counter`."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as shows
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, WAIT_SECONDS)
    browser.get(f"{base}/desk")
    wait.until(shows.url_contains("/login"))
    browser.find_element(By.ID, "username").send_keys("anna")
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "form.form button[type=submit]").click()
    choose = (By.CSS_SELECTOR, f'button[data-sit="{counter}"]')
    wait.until(shows.element_to_be_clickable(choose)).click()
    wait.until(shows.url_to_be(f"{base}/desk/{counter}"))
    wait.until(shows.text_to_be_present_in_element((By.ID, "counter-status"), "Geschlossen"))


def console_errors(browser) -> list[str]:
    return [
        entry["message"]
        for entry in browser.get_log("browser")
        if "favicon.ico" not in entry["message"]
    ]


def test_a_clerk_calls_and_finishes_a_ticket_with_the_keyboard(office, server, browser):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as shows
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, WAIT_SECONDS)

    def text_of(element_id: str) -> str:
        return browser.find_element(By.ID, element_id).text

    def press(key: str) -> None:
        ActionChains(browser).send_keys(key).perform()

    # not signed in: the desk sends to the login, which comes back to the desk; take Platz 1
    take_counter(browser, server, "amt-1")
    assert "anna" in text_of("counter-clerk")
    browser.find_element(By.CSS_SELECTOR, 'button[data-action="open"]').click()
    wait.until(shows.text_to_be_present_in_element((By.ID, "counter-status"), "Geöffnet"))

    # a kiosk draws a ticket: it shows up in the waiting list without a reload
    number = draw(server, office)
    wait.until(shows.text_to_be_present_in_element((By.ID, "queue"), number))
    assert text_of("queue-count") == "1"

    # N calls it: the number becomes the current ticket
    press("n")
    wait.until(shows.text_to_be_present_in_element((By.ID, "current-number"), number))
    wait.until(shows.text_to_be_present_in_element((By.ID, "current-state"), "Aufgerufen"))
    assert number not in text_of("queue")
    if target := os.environ.get("AUFRUF_DESK_SCREENSHOT"):
        browser.save_screenshot(target)

    # D finishes it: the current area is empty again
    press("d")
    wait.until(shows.text_to_be_present_in_element((By.ID, "current-number"), "–"))
    assert text_of("current-state") == "Keine aktuelle Wartenummer."
    assert not browser.find_element(By.ID, "offline").is_displayed()
    assert text_of("desk-message") == ""
    assert console_errors(browser) == []


def test_the_desk_says_when_it_is_offline_and_comes_back_by_itself(office, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as shows
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, WAIT_SECONDS)
    offline = (By.ID, "offline")
    port = free_port()
    with live_server(office.settings, office.clock, port) as base:
        take_counter(browser, base, "amt-1")
        assert not browser.find_element(*offline).is_displayed()

    wait.until(shows.visibility_of_element_located(offline))
    assert "Keine Verbindung" in browser.find_element(*offline).text

    with live_server(office.settings, office.clock, port) as base:
        wait.until(shows.invisibility_of_element_located(offline))
        number = draw(base, office)
        wait.until(shows.text_to_be_present_in_element((By.ID, "queue"), number))


async def _booked(url: str, code: str) -> tuple[Appointment, Contact]:
    db = Database(url)
    try:
        async with db.read() as session:
            appointment = await session.scalar(select(Appointment).where(Appointment.code == code))
            assert appointment is not None, f"no appointment {code}"
            return appointment, await session.get(Contact, appointment.id)
    finally:
        await db.dispose()


def test_a_clerk_books_for_a_citizen_on_the_phone_without_an_email(office, server, browser):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as shows
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, WAIT_SECONDS)
    dialog = (By.ID, "book-dialog")

    def press(key: str) -> None:
        ActionChains(browser).send_keys(key).perform()

    def chip(group: str, value: str):
        """The label drawn as a chip around the radio button of `value`."""
        radio = (By.CSS_SELECTOR, f'input[name="{group}"][value="{value}"]')
        # the radio itself is transparent over its chip: wait until it is there and enabled
        found = wait.until(lambda b: [r for r in b.find_elements(*radio) if r.is_enabled()])
        return found[0].find_element(By.XPATH, "..")

    # what is free for one "pass", as the booking site would be told
    offered = httpx.get(
        f"{server}/api/v1/availability",
        params={"location": "amt", "service": "pass"},
        timeout=WAIT_SECONDS,
        trust_env=False,
    ).json()
    free_days = [day for day in offered["days"][:14] if day["slots"]]
    assert free_days, f"the test location has no free time in the next 14 days: {offered}"
    day, start = free_days[0]["date"], free_days[0]["slots"][0]

    take_counter(browser, server, "amt-1")
    wait.until(shows.element_to_be_clickable((By.ID, "book-open")))
    press("b")
    wait.until(shows.visibility_of_element_located(dialog))
    assert browser.switch_to.active_element.get_attribute("name") == "service"

    browser.find_element(By.CSS_SELECTOR, 'input[name="service"][value="pass"]').click()
    chip("book-day", day).click()  # the first day with free times
    chip("book-time", start).click()  # its first free time
    assert browser.find_element(By.CSS_SELECTOR, f'input[value="{start}"]').is_selected()
    name = browser.find_element(By.ID, "book-name")
    name.send_keys("Erika Mustermann")
    browser.find_element(By.ID, "book-phone").send_keys("02331 207-0")
    if target := os.environ.get("AUFRUF_BOOK_SCREENSHOT"):
        viewport = {"width": 1366, "height": 768, "deviceScaleFactor": 1, "mobile": False}
        browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", viewport)
        browser.save_screenshot(target)
    name.send_keys(Keys.ENTER)  # no e-mail address

    wait.until(lambda b: len(b.find_element(By.ID, "book-code").text) == 6)
    code = browser.find_element(By.ID, "book-code").text
    assert browser.find_element(By.ID, "book-done-when").text.endswith(f"{start[11:16]} Uhr")
    assert "keine E-Mail" in browser.find_element(By.ID, "book-done-note").text
    assert browser.switch_to.active_element.get_attribute("id") == "book-done-heading"
    if target:
        browser.save_screenshot(target.replace(".png", "-done.png"))

    # Escape closes the dialog and gives the focus back to the button that opens it
    press(Keys.ESCAPE)
    wait.until(shows.invisibility_of_element_located(dialog))
    assert browser.switch_to.active_element.get_attribute("id") == "book-open"

    appointment, contact = asyncio.run(_booked(office.settings.database_url, code))
    assert appointment.status == "confirmed"
    assert appointment.booked_by == "staff"
    assert appointment.start_at == datetime.fromisoformat(start)
    assert appointment.language == "de"
    assert (contact.name, contact.email, contact.phone) == ("Erika Mustermann", None, "02331 207-0")
    assert console_errors(browser) == []
