"""The phone view in a real browser (headless Chromium at phone size) against a real server: the
people-ahead figure follows the queue without a reload, a call says where to go, leaving the
queue asks first; a link that falls silent is noticed and opened again; axe-core finds nothing
in German and in Arabic (right to left)."""

from __future__ import annotations

from tests.display.live import SilentLink
from tests.e2e import test_display as display_tests
from tests.e2e.conftest import axe_violations
from tests.e2e.test_display import shown, waiter

office, server = display_tests.office, display_tests.server  # a real server, an office

PHONE = {"width": 360, "height": 740}


def open_ticket(browser, base: str, token: str) -> None:
    browser.get(f"{base}/t/{token}")
    waiter(browser).until(lambda b: b.execute_script("return !!(window.aufrufTicket||{}).online"))
    browser.execute_script("window.sameDocument = true")  # gone if the page reloads


def same_document(browser) -> bool:
    return browser.execute_script("return window.sameDocument === true")


def test_people_ahead_fall_live_and_the_call_says_where_to_go(browser_factory, office, server):
    browser = browser_factory(**PHONE)
    office.draw(server)
    mine = office.draw(server)
    open_ticket(browser, server, mine["token"])
    assert shown(browser, "ticket-number") == "A002"
    assert shown(browser, "people-ahead") == "1"
    live = "return document.getElementById('people-ahead').closest('[aria-live=polite]').id"
    assert browser.execute_script(live) == "ticket-live"

    office.call_next(server, 1)  # the ticket ahead
    waiter(browser).until(lambda b: shown(b, "people-ahead") == "0")
    assert same_document(browser)

    office.call_next(server, 2)
    waiter(browser).until(lambda b: shown(b, "ticket-message") == "Sie sind dran: Platz 2")
    assert same_document(browser)
    assert not browser.find_element("id", "ticket-figures").is_displayed()
    assert not browser.find_element("id", "leave").is_displayed()
    has_vibrate = browser.execute_script("return 'vibrate' in navigator")
    assert browser.execute_script("return aufrufTicket.vibrated") == (1 if has_vibrate else 0)


def test_a_link_that_falls_silent_is_dropped_and_opened_again(browser_factory, office, server):
    """Nothing closes the socket, the link just carries nothing: the page's periodic check
    (handed a time past its limit of silence) says it is offline and opens a new link, which
    brings what changed meanwhile."""
    link = SilentLink(int(server.rsplit(":", 1)[1]))
    try:
        browser = browser_factory(lang="en", **PHONE)
        office.draw(server)
        mine = office.draw(server)
        open_ticket(browser, f"http://127.0.0.1:{link.port}", mine["token"])
        assert shown(browser, "people-ahead") == "1"
        with link.silent():
            office.call_next(server, 1)  # the ticket ahead
            browser.execute_script("aufrufTicket.keepAlive(Date.now() + 1000)")
            assert browser.execute_script("return aufrufTicket.online")  # only a ping
            browser.execute_script("aufrufTicket.keepAlive(Date.now() + 46000)")
            assert not browser.execute_script("return aufrufTicket.online")
            assert shown(browser, "connection") == "Connection lost. Trying again…"
            assert shown(browser, "people-ahead") == "1"
        waiter(browser).until(lambda b: shown(b, "people-ahead") == "0")
        waiter(browser).until(lambda b: b.execute_script("return aufrufTicket.online"))
        assert shown(browser, "connection") != "Connection lost. Trying again…"
        assert same_document(browser)
    finally:
        link.close()


def test_leaving_the_queue_asks_first(browser_factory, office, server):
    from selenium.webdriver.common.by import By

    browser = browser_factory(lang="en", **PHONE)
    mine = office.draw(server)
    open_ticket(browser, server, mine["token"])
    browser.find_element(By.LINK_TEXT, "Leave the queue").click()
    waiter(browser).until(lambda b: b.current_url.split("?")[0].endswith("/leave"))
    assert browser.find_element(By.TAG_NAME, "h1").text == "Leave the queue?"

    browser.find_element(By.LINK_TEXT, "No, keep my place").click()
    waiter(browser).until(lambda b: not b.current_url.split("?")[0].endswith("/leave"))
    browser.find_element(By.LINK_TEXT, "Leave the queue").click()
    browser.find_element(By.CSS_SELECTOR, "form.ticket-confirm button[type=submit]").click()

    waiter(browser).until(
        lambda b: (
            shown(b, "ticket-message") == "You have left the queue. This number is no longer valid."
        )
    )
    assert not browser.find_element(By.ID, "leave").is_displayed()


def test_axe_finds_nothing_on_the_phone_view_in_german_and_arabic(browser_factory, office, server):
    office.draw(server)
    mine = office.draw(server)
    for lang in ("de", "ar"):
        browser = browser_factory(lang=lang, **PHONE)
        open_ticket(browser, server, mine["token"])
        assert browser.execute_script("return document.documentElement.lang") == lang
        assert axe_violations(browser) == [], lang
    arabic = browser.execute_script("return document.documentElement.dir")
    assert arabic == "rtl"
    office.call_next(server, 1)
    office.call_next(server, 2)
    waiter(browser).until(lambda b: "Platz 2" in (shown(b, "ticket-message") or ""))
    assert axe_violations(browser) == []
