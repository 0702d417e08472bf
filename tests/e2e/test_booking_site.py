"""The booking site in a real browser (headless Chromium through selenium) against a real
server with the demo offices: a citizen books two passports end to end, finds the code as a
QR code that zbar reads off the screen, cancels on the manage page and sees the time free
again, in German, English and Arabic; axe-core finds nothing on any step in German and Arabic;
the whole flow works with the keyboard alone with a visible focus; and the pages reflow on
phones and at 200% zoom without horizontal scrolling."""

from __future__ import annotations

import asyncio
import io
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from aufruf import migrate
from aufruf.clock import FixedClock
from aufruf.db import Database
from aufruf.offices.config import DEMO_FILE
from aufruf.offices.importer import import_file
from aufruf.settings import Settings
from tests.conftest import SECRET
from tests.display.live import live_server
from tests.e2e.conftest import axe_violations, need_chromium

WAIT_SECONDS = 20
DAY = "2026-11-24"  # a Tuesday; the clock stands on Monday 07:00 in Berlin
PASSPORTS = "authority=buergeramt&service=reisepass&service=reisepass"
LOCATION = "buergeramt-mitte"
# (width, height, zoom, language); zoom 2: 200%
SIZES = [
    (320, 640, 1, "de"),
    (360, 740, 1, "de"),
    (1280, 800, 1, "de"),
    (1280, 800, 2, "de"),
    (320, 640, 1, "ar"),
]


async def _prepare(url: str, clock: FixedClock) -> None:
    db = Database(url)
    try:
        await migrate.upgrade(db.engine)
        await import_file(db, DEMO_FILE, clock.now())
    finally:
        await db.dispose()


@dataclass(frozen=True)
class Site:
    base: str
    settings: Settings
    clock: FixedClock

    def worker_runs_after(self, minutes: int) -> None:
        """Time passes and the worker does what is then due (e.g. frees held-back times)."""
        from aufruf.worker import Worker

        self.clock.advance(minutes=minutes)

        async def tick() -> None:
            db = Database(self.settings.database_url)
            try:
                await Worker(db, self.clock).tick()
            finally:
                await db.dispose()

        asyncio.run(tick())


def serve_demo(tmp_path: Path, pow_difficulty: int = 0) -> Iterator[Site]:
    """A real server on the demo offices (SQLite), its clock on Monday 2026-11-23 07:00."""
    need_chromium()
    clock = FixedClock(datetime(2026, 11, 23, 6, 0, tzinfo=UTC))
    url = f"sqlite+aiosqlite:///{tmp_path / 'aufruf.db'}"
    asyncio.run(_prepare(url, clock))
    settings = Settings(
        database_url=url, secret_key=SECRET, booking_rate_limit=0, pow_difficulty=pow_difficulty
    )
    with live_server(settings, clock) as base:
        yield Site(base, settings, clock)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    yield from serve_demo(tmp_path)


@pytest.fixture
def guarded_site(tmp_path: Path) -> Iterator[Site]:
    """The same, asking a proof of work of every public booking."""
    yield from serve_demo(tmp_path, pow_difficulty=5000)


def waiter(browser):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, WAIT_SECONDS)


def open_page(browser, url: str) -> None:
    from selenium.webdriver.support import expected_conditions as shows

    browser.get(url)
    waiter(browser).until(shows.presence_of_element_located(("css selector", "footer")))


def mark_page(browser) -> None:
    browser.execute_script("window.aufrufOldPage = true")


def wait_for_next_page(browser) -> None:
    """Wait until a new document (without the mark) has loaded."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support import expected_conditions as shows
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, WAIT_SECONDS, ignored_exceptions=(WebDriverException,)).until(
        lambda b: b.execute_script(
            "return !window.aufrufOldPage && document.readyState === 'complete'"
        )
    )
    waiter(browser).until(shows.presence_of_element_located(("css selector", "footer")))


def click(browser, selector: str) -> None:
    """Click and wait for the next page."""
    element = browser.find_element("css selector", selector)
    mark_page(browser)
    element.click()
    wait_for_next_page(browser)


def decode_qr_on_screen(browser) -> str:
    from PIL import Image
    from pyzbar.pyzbar import decode

    svg = browser.find_element("css selector", "svg.qr-code")
    found = decode(Image.open(io.BytesIO(svg.screenshot_as_png)))
    return found[0].data.decode() if found else ""


def book_in_browser(browser, base: str, lang: str) -> tuple[str, str, str]:
    """Books two passports at Mitte on DAY through the pages; (code, token, time text)."""
    from selenium.webdriver.support.ui import Select

    open_page(browser, f"{base}/?lang={lang}")
    assert browser.find_element("css selector", "html").get_attribute("lang") == lang
    click(browser, 'a[href="/services?authority=buergeramt"]')
    Select(browser.find_element("id", "qty-reisepass")).select_by_value("2")
    click(browser, 'button[name="choose"]')
    click(browser, f'a.choice[href*="location={LOCATION}"]')
    click(browser, f'.day-free a[href*="day={DAY}"]')
    chosen = browser.find_element("css selector", ".times a")
    time_text = chosen.text
    click(browser, ".times a")
    browser.find_element("id", "name").send_keys("Erika Mustermann")
    browser.find_element("id", "email").send_keys("erika@example.org")
    browser.find_element("id", "consent").click()
    click(browser, 'form[action^="/book"] button[type="submit"]')
    token = re.fullmatch(rf"{re.escape(base)}/a/([^/]+)/booked", browser.current_url).group(1)
    code = browser.find_element("css selector", ".code").text
    return code, token, time_text


def times_of_the_day(browser, base: str) -> list[str]:
    open_page(browser, f"{base}/time?{PASSPORTS}&location={LOCATION}&day={DAY}")
    return [a.text for a in browser.find_elements("css selector", ".times a")]


@pytest.mark.parametrize(
    ("lang", "booked_heading", "cancelled_notice"),
    [
        ("de", "Ihr Termin ist gebucht", "Ihr Termin wurde abgesagt."),
        ("en", "Your appointment is booked", "Your appointment has been cancelled."),
        ("ar", "تم حجز موعدك", "تم إلغاء موعدك."),
    ],
)
def test_a_citizen_books_cancels_and_sees_the_time_free_again(
    site, browser_factory, lang, booked_heading, cancelled_notice
):
    browser = browser_factory(lang=lang)

    code, token, time_text = book_in_browser(browser, site.base, lang)

    assert browser.find_element("tag name", "h1").text == booked_heading
    assert re.fullmatch(r"[A-Z2-9]{6}", code)
    assert decode_qr_on_screen(browser) == code
    assert browser.find_element("css selector", "html").get_attribute("dir") == (
        "rtl" if lang == "ar" else "ltr"
    )
    appointment = httpx.get(f"{site.base}/api/v1/appointments/{token}", trust_env=False).json()
    assert appointment["status"] == "confirmed"
    assert appointment["services"] == ["reisepass", "reisepass"]
    calendar = browser.find_element("css selector", 'a[href$="/calendar.ics"]')
    assert calendar.get_attribute("href").endswith(f"/api/v1/appointments/{token}/calendar.ics")
    assert time_text not in times_of_the_day(browser, site.base)

    open_page(browser, f"{site.base}/a/{token}")
    click(browser, f'a[href="/a/{token}/cancel"]')
    click(browser, "button.danger")

    assert cancelled_notice == browser.find_element("css selector", ".notice").text
    # Mitte keeps a cancelled time back for 30 minutes (against trading in times)
    assert time_text not in times_of_the_day(browser, site.base)
    site.worker_runs_after(minutes=31)
    assert time_text in times_of_the_day(browser, site.base)


def flow_urls(base: str) -> list[str]:
    return [
        f"{base}/",
        f"{base}/services?authority=buergeramt",
        f"{base}/location?{PASSPORTS}",
        f"{base}/day?{PASSPORTS}&location={LOCATION}",
        f"{base}/time?{PASSPORTS}&location={LOCATION}&day={DAY}",
        f"{base}/details?{PASSPORTS}&location={LOCATION}&day={DAY}"
        f"&start={DAY}T10%3A00%3A00%2B01%3A00",
    ]


def booked_token(base: str, start: str = f"{DAY}T11:00:00+01:00") -> str:
    response = httpx.post(
        f"{base}/book",
        data={
            "authority": "buergeramt",
            "service": "reisepass",
            "location": LOCATION,
            "start": start,
            "name": "Erika Mustermann",
            "email": "erika@example.org",
            "consent": "1",
        },
        trust_env=False,
        timeout=WAIT_SECONDS,
    )
    assert response.status_code == 303, response.text
    return response.headers["location"].split("/")[2]


def own_urls(base: str, token: str) -> list[str]:
    return [
        f"{base}/a/{token}/booked",
        f"{base}/a/{token}",
        f"{base}/a/{token}/cancel",
        f"{base}/a/{token}/move",
        f"{base}/a/{token}/move?day=2026-11-25",
        f"{base}/a/nonexistent",
        f"{base}/accessibility",
    ]


@pytest.mark.parametrize("lang", ["de", "ar"])
def test_axe_finds_nothing_on_any_step(site, browser_factory, lang):
    browser = browser_factory(lang=lang)
    token = booked_token(site.base)
    found = {}

    for url in [*flow_urls(site.base), *own_urls(site.base, token)]:
        open_page(browser, url)
        found[url.removeprefix(site.base)] = axe_violations(browser)
    # the form with its errors: nothing entered
    open_page(browser, flow_urls(site.base)[-1])
    click(browser, 'form[action^="/book"] button[type="submit"]')
    assert browser.find_elements("css selector", '[aria-invalid="true"]')
    found["/book (errors)"] = axe_violations(browser)

    assert {url: v for url, v in found.items() if v} == {}


def test_the_whole_flow_works_with_the_keyboard_alone(site, browser_factory):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    browser = browser_factory()
    open_page(browser, f"{site.base}/")
    stops: list[str] = []

    def press(*keys: str) -> None:
        ActionChains(browser).send_keys(*keys).perform()

    def focused_matches(selector: str) -> bool:
        return browser.execute_script(
            "return document.activeElement.matches(arguments[0])", selector
        )

    def tab_to(selector: str, limit: int = 80) -> None:
        for _ in range(limit):
            press(Keys.TAB)
            focus = browser.execute_script(
                """const e = document.activeElement, s = getComputedStyle(e);
                return {tag: e.tagName, outline: s.outlineStyle,
                        width: parseFloat(s.outlineWidth), shadow: s.boxShadow};"""
            )
            assert focus["outline"] != "none" and focus["width"] >= 2, focus
            stops.append(focus["tag"])
            if focused_matches(selector):
                return
        raise AssertionError(f"{selector} is not reached with TAB on {browser.current_url}")

    def enter_and_wait(key: str = Keys.ENTER) -> None:
        mark_page(browser)
        press(key)
        wait_for_next_page(browser)

    tab_to('a[href="/services?authority=buergeramt"]')
    enter_and_wait()
    tab_to("#qty-reisepass")
    press(Keys.ARROW_DOWN, Keys.ARROW_DOWN)
    assert browser.execute_script("return document.activeElement.value") == "2"
    tab_to('button[name="choose"]')
    enter_and_wait()
    tab_to(f'a.choice[href*="location={LOCATION}"]')
    enter_and_wait()
    tab_to(f'a[href*="day={DAY}"]')
    enter_and_wait()
    tab_to(".times a")
    enter_and_wait()
    tab_to("#name")
    press("Erika Mustermann")
    tab_to("#email")
    press("erika@example.org")
    tab_to("#consent")
    press(Keys.SPACE)
    assert browser.find_element("id", "consent").is_selected()
    tab_to('form[action^="/book"] button[type="submit"]')
    enter_and_wait()

    assert "/booked" in browser.current_url
    assert browser.find_element("tag name", "h1").text == "Ihr Termin ist gebucht"
    assert "A" in stops and "SELECT" in stops and "INPUT" in stops and "BUTTON" in stops


def screenshot_dir(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("AUFRUF_SCREENSHOT_DIR") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_the_pages_reflow_on_phones_and_at_200_percent_zoom(site, browser, tmp_path):
    token = booked_token(site.base)
    pages = [*flow_urls(site.base), *own_urls(site.base, token)[:4]]
    folder = screenshot_dir(tmp_path)
    problems = []

    for width, height, zoom, lang in SIZES:
        # the viewport a window of width x height has at this zoom (200%: half as many CSS px)
        browser.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {
                "width": width // zoom,
                "height": height // zoom,
                "deviceScaleFactor": zoom,
                "mobile": False,
            },
        )
        for n, url in enumerate(pages, 1):
            open_page(browser, f"{url}{'&' if '?' in url else '?'}lang={lang}")
            measured = browser.execute_script(
                """const root = document.documentElement, limit = root.clientWidth;
                const cut = [...document.body.querySelectorAll('*')].filter(e => {
                  const r = e.getBoundingClientRect(), s = getComputedStyle(e);
                  const hidden = !r.width || s.visibility === 'hidden';
                  if (hidden || e.closest('.skip-link')) return false;
                  return r.left < -1 || r.right > limit + 1;
                }).map(e => e.tagName + '.' + e.className).slice(0, 5);
                return {scroll: root.scrollWidth, client: limit, cut: cut};"""
            )
            name = f"{lang}-{width}x{height}{'-zoom200' if zoom == 2 else ''}-{n:02d}.png"
            browser.save_screenshot(str(folder / name))
            if measured["scroll"] > measured["client"] or measured["cut"]:
                problems.append((name, url.removeprefix(site.base), measured))

    assert problems == []
    shots = sorted(folder.glob("*.png"))
    assert len(shots) == len(SIZES) * len(pages)
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in shots)


def test_the_browser_solves_the_proof_of_work_so_the_booking_is_confirmed_at_once(
    guarded_site, browser
):
    from selenium.webdriver.support import expected_conditions as shows

    details = flow_urls(guarded_site.base)[-1]
    open_page(browser, details)
    proof = ("css selector", 'input[name="altcha"]')
    waiter(browser).until(shows.presence_of_element_located(proof))
    waiter(browser).until(lambda b: b.find_element(*proof).get_attribute("value"))
    assert axe_violations(browser) == []
    browser.find_element("id", "name").send_keys("Erika Mustermann")
    browser.find_element("id", "email").send_keys("erika@example.org")
    browser.find_element("id", "consent").click()
    click(browser, 'form[action^="/book"] button[type="submit"]')

    assert browser.find_element("tag name", "h1").text == "Ihr Termin ist gebucht"
    token = browser.current_url.split("/")[-2]
    appointment = httpx.get(f"{guarded_site.base}/api/v1/appointments/{token}", trust_env=False)
    assert appointment.json()["status"] == "confirmed"
    assert [c["name"] for c in browser.get_cookies()] == []  # no cookie for the proof
    errors = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert [m for m in errors if "favicon.ico" not in m] == []
