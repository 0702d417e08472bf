"""The kiosk in a real browser (headless Chromium through selenium) against a real server:
registered by its token, a tap on a tile draws a ticket whose number and QR code are on the
screen (the QR code read back from a screenshot with zbar), a scanner checks in by typing the
code and Enter, the screen returns to the start after the idle time, and axe-core finds no
WCAG 2.1 AA violation on the start and result screens in German and Arabic; the result fits a
1366x768 screen with what it says about the paper ticket; and with the worker running, a tapped
tile ends as the ticket's ESC/POS bytes in the kiosk's own printer (a file), number and QR code
as on the screen."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from aufruf import migrate
from aufruf.auth.service import create_token
from aufruf.booking.service import BookingRequest, book
from aufruf.clock import FixedClock
from aufruf.db import Database
from aufruf.offices.model import Kiosk, Printer
from aufruf.printer.model import PrintJob
from aufruf.queue.model import Ticket
from aufruf.queue.service import ticket_token
from aufruf.settings import Settings
from tests.builders import a_location
from tests.conftest import SECRET
from tests.display.live import free_port, live_server
from tests.e2e.conftest import axe_violations, need_chromium
from tests.printer.paper import read_paper
from tests.printer.test_ticket_layout import decode

WAIT_SECONDS = 20


@dataclass(frozen=True)
class Office:
    settings: Settings
    clock: FixedClock
    kiosk: str  # the kiosk's token
    code: str  # the booking code of an appointment at 09:10 today


async def _prepare(url: str, clock: FixedClock) -> tuple[str, str]:
    db = Database(url)
    try:
        await migrate.upgrade(db.engine)
        await a_location(db, "amt", services={"pass": 10, "other": 10}, counters=2)
        async with db.write() as session:
            session.add(Kiosk(id="amt-kiosk", location_id="amt", name="Eingang", active=True))
            await session.flush()
            token = (await create_token(session, clock.now(), role="kiosk", location="amt")).token
            booked = await book(
                session,
                SECRET,
                clock.now() - timedelta(days=2),
                BookingRequest(
                    location="amt",
                    services=["pass"],
                    start=datetime(2026, 11, 23, 8, 10, tzinfo=UTC),
                    name="Erika Muster",
                    email="erika@example.org",
                ),
            )
        return token, booked.appointment.code
    finally:
        await db.dispose()


async def _tickets(url: str) -> list[Ticket]:
    db = Database(url)
    try:
        async with db.read() as session:
            return list(await session.scalars(select(Ticket).order_by(Ticket.id)))
    finally:
        await db.dispose()


@pytest.fixture
def office(tmp_path: Path) -> Office:
    need_chromium()
    clock = FixedClock(datetime(2026, 11, 23, 8, 0, tzinfo=UTC))  # Monday 09:00 in Berlin
    url = f"sqlite+aiosqlite:///{tmp_path / 'aufruf.db'}"
    token, code = asyncio.run(_prepare(url, clock))
    settings = Settings(database_url=url, secret_key=SECRET, booking_rate_limit=0)
    return Office(settings, clock, token, code)


@pytest.fixture
def server(office: Office) -> Iterator[str]:
    with live_server(office.settings, office.clock) as base:
        yield base


def tickets(office: Office) -> list[Ticket]:
    return asyncio.run(_tickets(office.settings.database_url))


def open_kiosk(browser, base: str, office: Office, lang: str | None = None) -> None:
    """Register the browser as the kiosk, as its start command does; the token leaves the URL."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as shows
    from selenium.webdriver.support.ui import WebDriverWait

    query = f"&lang={lang}" if lang else ""
    browser.get(f"{base}/kiosk/amt?token={office.kiosk}{query}")
    wait = WebDriverWait(browser, WAIT_SECONDS)
    wait.until(shows.url_to_be(f"{base}/kiosk/amt" + (f"?lang={lang}" if lang else "")))
    wait.until(shows.presence_of_element_located((By.ID, "code")))
    assert office.kiosk not in browser.current_url


def shown_number(browser) -> str:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as shows
    from selenium.webdriver.support.ui import WebDriverWait

    found = WebDriverWait(browser, WAIT_SECONDS).until(
        shows.visibility_of_element_located((By.ID, "ticket-number"))
    )
    return found.text


def tap_tile(browser, service: str) -> None:
    from selenium.webdriver.common.by import By

    browser.find_element(By.CSS_SELECTOR, f'button.tile[value="{service}"]').click()


def qr_codes_on_screen(browser) -> list[str]:
    from PIL import Image
    from pyzbar.pyzbar import decode

    picture = Image.open(io.BytesIO(browser.get_screenshot_as_png()))
    return [found.data.decode() for found in decode(picture)]


def test_a_tap_on_a_tile_shows_the_tickets_number_and_a_readable_qr_code(office, server, browser):
    open_kiosk(browser, server, office)

    tap_tile(browser, "pass")
    number = shown_number(browser)

    [ticket] = tickets(office)
    assert number == ticket.number == "A001"
    assert ticket.kiosk_id == "amt-kiosk"
    # the whole screenshot of the window, as a phone's camera sees the screen
    assert qr_codes_on_screen(browser) == [f"{server}/t/{ticket_token(SECRET, ticket)}"]
    assert "Niemand ist vor Ihnen." in browser.page_source


def test_a_scanner_checks_in_by_typing_the_code_and_enter(office, server, browser):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    open_kiosk(browser, server, office)

    # a scanner is a keyboard: it types into whatever has the focus (here: nothing)
    typed = f"{office.code[:3].lower()}{office.code[3:]}"
    ActionChains(browser).send_keys(typed + Keys.ENTER).perform()

    assert shown_number(browser) == "T001"
    assert [t.number for t in tickets(office)] == ["T001"]
    assert "Ihr Termin: 09:10" in browser.page_source


def test_the_kiosk_returns_to_the_start_in_its_own_language_when_left_alone(
    office, server, browser
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as shows
    from selenium.webdriver.support.ui import WebDriverWait

    open_kiosk(browser, server, office, lang="tr")
    tap_tile(browser, "other")
    assert shown_number(browser) == "A001"
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "tr"

    # the idle time comes from the page; a short one, then one touch to start counting
    browser.execute_script(
        "document.querySelector('[data-idle-seconds]').setAttribute('data-idle-seconds', '1');"
    )
    browser.find_element(By.ID, "ticket-number").click()

    WebDriverWait(browser, WAIT_SECONDS).until(shows.url_to_be(f"{server}/kiosk/amt"))
    WebDriverWait(browser, WAIT_SECONDS).until(
        shows.presence_of_element_located((By.CSS_SELECTOR, "button.tile"))
    )
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "de"
    assert browser.find_elements(By.ID, "ticket-number") == []


@pytest.mark.parametrize("lang", ["de", "ar"])
def test_start_and_result_screens_pass_axe(office, server, browser, lang):
    from selenium.webdriver.common.by import By

    open_kiosk(browser, server, office, lang=lang)
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == lang
    assert axe_violations(browser) == []

    tap_tile(browser, "pass")
    assert shown_number(browser) == "A001"
    assert axe_violations(browser) == []


def test_on_screen_keys_type_the_code_on_a_screen_without_a_keyboard(office, server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as shows
    from selenium.webdriver.support.ui import WebDriverWait

    open_kiosk(browser, server, office, lang="ar")
    keypad = browser.find_element(By.ID, "keypad")
    assert not keypad.is_displayed()

    browser.find_element(By.ID, "code").click()
    WebDriverWait(browser, WAIT_SECONDS).until(shows.visibility_of(keypad))
    assert axe_violations(browser) == []
    for key in office.code + "9":
        browser.find_element(By.CSS_SELECTOR, f'#keypad [data-key="{key}"]').click()
    browser.find_element(By.CSS_SELECTOR, "#keypad [data-erase]").click()  # one too many
    assert browser.find_element(By.ID, "code").get_attribute("value") == office.code
    browser.find_element(By.CSS_SELECTOR, "button.check-in").click()

    assert shown_number(browser) == "T001"


def test_a_refused_check_in_reads_well_and_passes_axe_in_arabic(office, server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as shows
    from selenium.webdriver.support.ui import WebDriverWait

    open_kiosk(browser, server, office, lang="ar")

    browser.find_element(By.ID, "code").send_keys("ZZZZZZ" + Keys.ENTER)

    WebDriverWait(browser, WAIT_SECONDS).until(
        shows.text_to_be_present_in_element((By.TAG_NAME, "h1"), "لم يُعثر على الرمز")
    )
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("dir") == "rtl"
    assert axe_violations(browser) == []
    assert tickets(office) == []


def test_a_second_tap_before_the_answer_sends_nothing(office, server, browser):
    from selenium.webdriver.common.by import By

    open_kiosk(browser, server, office)
    # watch the form's submissions after kiosk.js has seen them; hold them all on this screen
    browser.execute_script(
        """
        window.sent = [];
        document.querySelector('form.tiles-form').addEventListener('submit', function (event) {
          window.sent.push(event.defaultPrevented ? 'held back' : 'sent');
          event.preventDefault();
        });
        """
    )

    tile = browser.find_element(By.CSS_SELECTOR, 'button.tile[value="pass"]')
    tile.click()
    tile.click()

    assert browser.execute_script("return window.sent;") == ["sent", "held back"]


# --- the result screen on a 1366x768 kiosk -------------------------------------------------


def fits_the_screen(browser) -> bool:
    """Whether the page shown fits a 1366x768 screen: nothing to scroll, "All done" in view."""
    metrics = {"width": 1366, "height": 768, "deviceScaleFactor": 1, "mobile": False}
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    return browser.execute_script(
        """
        const page = document.documentElement;
        const done = document.querySelector('[data-kiosk-done]').getBoundingClientRect();
        return page.scrollHeight <= innerHeight && page.scrollWidth <= innerWidth
          && done.bottom <= innerHeight;
        """
    )


@pytest.mark.parametrize(
    ("lang", "words"),
    [("de", "Leider kann keine Wartemarke"), ("ru", "К сожалению"), ("ar", "نأسف")],
)
def test_without_a_printer_the_result_says_so_and_still_fits_the_screen(
    office, server, browser, lang, words
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as shows
    from selenium.webdriver.support.ui import WebDriverWait

    open_kiosk(browser, server, office, lang=lang)  # this kiosk has no printer
    tap_tile(browser, "pass")
    assert shown_number(browser) == "A001"
    browser.get(f"{server}/kiosk/amt?lang={lang}")  # the next visitor, one person ahead
    WebDriverWait(browser, WAIT_SECONDS).until(
        shows.element_to_be_clickable((By.CSS_SELECTOR, 'button.tile[value="pass"]'))
    )

    tap_tile(browser, "pass")

    assert shown_number(browser) == "A002"
    assert len(browser.find_elements(By.CLASS_NAME, "ticket-wait")) == 2  # ahead, and the wait
    sentence = browser.find_element(By.ID, "ticket-paper")
    assert sentence.is_displayed() and sentence.text.startswith(words)
    assert fits_the_screen(browser)
    [qr] = qr_codes_on_screen(browser)
    assert qr.startswith(f"{server}/t/")


# --- printing: the worker sends the job to the kiosk's own printer ---------------------------


@dataclass(frozen=True)
class PrintingOffice:
    settings: Settings
    clock: FixedClock
    kiosk: str  # the token of the kiosk at the entrance
    paper: Path  # what the entrance kiosk's printer received
    upstairs_paper: Path  # what the printer of the kiosk upstairs received
    port: int  # the server's, known before it starts: the tickets' links name it


async def _prepare_printing(url: str, clock: FixedClock, entrance: Path, upstairs: Path) -> str:
    db = Database(url)
    try:
        await migrate.upgrade(db.engine)
        await a_location(db, "amt", services={"pass": 10, "other": 10}, counters=2)
        async with db.write() as session:
            for printer_id, paper in (("drucker-eingang", entrance), ("drucker-oben", upstairs)):
                session.add(
                    Printer(
                        id=printer_id,
                        location_id="amt",
                        name=printer_id,
                        connection="direct",
                        target=f"dummy:{paper}",
                    )
                )
            await session.flush()
            for kiosk_id, printer_id in (
                ("kiosk-eingang", "drucker-eingang"),
                ("kiosk-oben", "drucker-oben"),
            ):
                session.add(
                    Kiosk(id=kiosk_id, location_id="amt", name=kiosk_id, printer_id=printer_id)
                )
            await session.flush()
            made = await create_token(
                session, clock.now(), role="kiosk", location="amt", kiosk="kiosk-eingang"
            )
        return made.token
    finally:
        await db.dispose()


async def _job_statuses(url: str) -> list[tuple[str, str]]:
    db = Database(url)
    try:
        async with db.read() as session:
            jobs = await session.scalars(select(PrintJob).order_by(PrintJob.id))
            return [(job.printer_id, job.status) for job in jobs]
    finally:
        await db.dispose()


@pytest.fixture
def printing_office(tmp_path: Path) -> PrintingOffice:
    need_chromium()
    clock = FixedClock(datetime(2026, 11, 23, 8, 0, tzinfo=UTC))  # Monday 09:00 in Berlin
    url = f"sqlite+aiosqlite:///{tmp_path / 'aufruf.db'}"
    entrance, upstairs = tmp_path / "eingang.bin", tmp_path / "oben.bin"
    token = asyncio.run(_prepare_printing(url, clock, entrance, upstairs))
    port = free_port()
    settings = Settings(
        database_url=url,
        secret_key=SECRET,
        booking_rate_limit=0,
        public_url=f"http://127.0.0.1:{port}",  # the phone-view link on paper
    )
    return PrintingOffice(settings, clock, token, entrance, upstairs, port)


@pytest.fixture
def printing_server(printing_office: PrintingOffice) -> Iterator[str]:
    office = printing_office
    with live_server(office.settings, office.clock, office.port, run_worker=True) as base:
        yield base


def test_a_tapped_tile_comes_out_of_the_kiosks_own_printer_as_on_the_screen(
    printing_office, printing_server, browser
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    office = printing_office
    open_kiosk(browser, printing_server, office)

    tap_tile(browser, "pass")
    number = shown_number(browser)
    [on_screen] = qr_codes_on_screen(browser)

    assert browser.find_element(By.ID, "ticket-paper").text == "Ihre Wartemarke wird gedruckt."
    assert fits_the_screen(browser)
    url = office.settings.database_url
    WebDriverWait(browser, WAIT_SECONDS, poll_frequency=0.2).until(
        lambda _: asyncio.run(_job_statuses(url)) == [("drucker-eingang", "printed")],
        message="the worker did not print the ticket",
    )
    data = office.paper.read_bytes()
    paper = read_paper(data)
    assert number in paper.text.split()
    [ticket] = tickets(office)
    assert number == ticket.number == "A001"
    assert paper.qr == on_screen == f"{printing_server}/t/{ticket_token(SECRET, ticket)}"
    assert len(decode(data).commands(b"GS V")) == 1  # one ticket, cut once
    assert not office.upstairs_paper.exists()  # the other kiosk's printer printed nothing
