"""/admin/printers in a real browser: a clerk signs in, sees the printer that cut a ticket
off, prints it again with the keyboard; the page passes axe-core's WCAG 2.1 AA checks on a
desktop and a phone."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from aufruf import migrate
from aufruf.auth.service import create_user
from aufruf.clock import FixedClock
from aufruf.db import Database
from aufruf.printer.model import PrintJob
from aufruf.queue import service as queue
from aufruf.settings import Settings
from tests.conftest import SECRET
from tests.display.live import live_server
from tests.e2e.conftest import axe_violations, need_chromium
from tests.printer.conftest import LOCATION, a_printing_office

PASSWORD = "correct horse battery"
WAIT_SECONDS = 20


async def _prepare(url: str, clock: FixedClock) -> str:
    """The printing office with clerk anna, and a kiosk ticket whose print was cut off."""
    db = Database(url)
    try:
        await migrate.upgrade(db.engine)
        await a_printing_office(db, clock)
        async with db.write() as session:
            await create_user(session, clock.now(), "anna", PASSWORD, "clerk", [LOCATION])
            ticket = await queue.draw_ticket(
                session,
                queue.Change(),
                clock.now(),
                LOCATION,
                ["pass"],
                source="kiosk",
                actor="kiosk:kiosk-a",
                kiosk_id="kiosk-a",
            )
            await session.flush()
            job = await session.scalar(select(PrintJob).where(PrintJob.ticket_id == ticket.id))
            job.status, job.started_at = "interrupted", clock.now()
            job.last_error = "the connection broke while printing"
        return ticket.number
    finally:
        await db.dispose()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, str]]:
    need_chromium()
    clock = FixedClock(datetime(2026, 11, 23, 8, 0, tzinfo=UTC))
    url = f"sqlite+aiosqlite:///{tmp_path / 'aufruf.db'}"
    number = asyncio.run(_prepare(url, clock))
    settings = Settings(database_url=url, secret_key=SECRET, booking_rate_limit=0)
    with live_server(settings, clock) as base:
        yield base, number


@pytest.mark.parametrize("width", [1366, 375])
def test_a_clerk_reprints_a_cut_off_ticket_and_the_page_is_accessible(
    served, browser_factory, width
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as shows
    from selenium.webdriver.support.ui import WebDriverWait

    base, number = served
    browser = browser_factory(width=width, height=800)
    wait = WebDriverWait(browser, WAIT_SECONDS)
    browser.get(f"{base}/admin/printers")
    wait.until(shows.url_contains("/login"))
    browser.find_element(By.ID, "username").send_keys("anna")
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "form.form button[type=submit]").click()
    wait.until(shows.url_to_be(f"{base}/admin/printers"))

    assert browser.find_element(By.TAG_NAME, "h1").text == "Ticketdrucker"
    assert axe_violations(browser) == []
    button = browser.find_element(
        By.CSS_SELECTOR, f'button[aria-label="Wartenummer {number} noch einmal drucken"]'
    )
    button.send_keys(Keys.ENTER)
    notice = (By.CSS_SELECTOR, "p.notice[role=status]")
    wait.until(shows.text_to_be_present_in_element(notice, f"Die Wartenummer {number}"))

    assert "Keine Wartenummer muss noch einmal gedruckt werden." in browser.page_source
    assert axe_violations(browser) == []
