"""The desk says when the location's ticket printer needs care: a clerk sees at the counter
that the kiosk's printer is not reachable, with a link to the printers page."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aufruf import migrate
from aufruf.auth.service import create_user
from aufruf.clock import FixedClock
from aufruf.db import Database
from aufruf.settings import Settings
from tests.conftest import SECRET
from tests.display.live import live_server
from tests.e2e.test_desk import PASSWORD, WAIT_SECONDS, take_counter
from tests.printer.conftest import LOCATION, a_printing_office


async def _prepare(url: str, clock: FixedClock) -> None:
    """The printing office (two agent printers, no agent connected) and clerk anna."""
    db = Database(url)
    try:
        await migrate.upgrade(db.engine)
        await a_printing_office(db, clock)
        async with db.write() as session:
            await create_user(session, clock.now(), "anna", PASSWORD, "clerk", [LOCATION])
    finally:
        await db.dispose()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    from tests.e2e.conftest import need_chromium

    need_chromium()
    clock = FixedClock(datetime(2026, 11, 23, 8, 0, tzinfo=UTC))
    url = f"sqlite+aiosqlite:///{tmp_path / 'aufruf.db'}"
    asyncio.run(_prepare(url, clock))
    settings = Settings(database_url=url, secret_key=SECRET, booking_rate_limit=0)
    with live_server(settings, clock) as base:
        yield base


def test_the_desk_says_that_the_ticket_printer_is_not_reachable(server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as shows
    from selenium.webdriver.support.ui import WebDriverWait

    take_counter(browser, server, f"{LOCATION}-1")
    line = (By.ID, "printer-state")
    WebDriverWait(browser, WAIT_SECONDS).until(shows.visibility_of_element_located(line))

    text = browser.find_element(*line).text
    assert "Der Ticketdrucker Drucker A ist nicht erreichbar." in text
    link = browser.find_element(By.CSS_SELECTOR, "#printer-state a")
    assert link.get_attribute("href").endswith("/admin/printers")
