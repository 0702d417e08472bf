"""What the browser tests share: headless Chromium (Debian's, through selenium) and axe-core.

`browser` is a ready driver at 1366x768 in German; `browser_factory(width=, height=, lang=)`
opens more, e.g. a phone at 360x740 in Arabic. `axe_violations(driver)` runs axe-core (the npm
package in node_modules/, installed by `.ci/run` with `npm ci`) on the page shown and returns
its violations for WCAG 2.1 A and AA.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REQUIRE_ALL

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"


def need_chromium() -> None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if not missing:
        return
    message = "Chromium not installed (apt-get install chromium chromium-driver)"
    if REQUIRE_ALL:
        pytest.fail(f"{message}: {', '.join(missing)} missing but AUFRUF_TEST_REQUIRE_ALL=1")
    pytest.skip(message)


def need_axe() -> str:
    if AXE.exists():
        return AXE.read_text(encoding="utf-8")
    message = "axe-core not installed (npm ci)"
    if REQUIRE_ALL:
        pytest.fail(f"{message}: {AXE} missing but AUFRUF_TEST_REQUIRE_ALL=1")
    pytest.skip(message)


def _accept_languages(lang: str) -> str:
    return f"{lang},de" if lang != "de" else "de-DE,de"


@pytest.fixture
def browser_factory(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """Opens headless Chromium drivers; all are closed at the end of the test."""
    need_chromium()
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    drivers: list[Any] = []

    def open_browser(width: int = 1366, height: int = 768, lang: str = "de") -> Any:
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        profile = tmp_path / f"chromium-profile-{len(drivers)}"
        for flag in (
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--window-size={width},{height}",
            f"--lang={lang}",
            f"--user-data-dir={profile}",
        ):
            options.add_argument(flag)
        options.add_experimental_option("prefs", {"intl.accept_languages": _accept_languages(lang)})
        options.set_capability("goog:loggingPrefs", {"browser": "SEVERE"})
        driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
        drivers.append(driver)
        return driver

    try:
        yield open_browser
    finally:
        for driver in drivers:
            driver.quit()


@pytest.fixture
def browser(browser_factory: Callable[..., Any]) -> Any:
    return browser_factory()


def axe_violations(driver: Any) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.1 A/AA violations on the page shown, each with rule id and targets."""
    driver.execute_script(need_axe())
    driver.set_script_timeout(60)
    result = driver.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        const tags = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];
        axe.run(document, {runOnly: {type: 'tag', values: tags}})
          .then(r => done(JSON.stringify(r.violations.map(v => ({
            id: v.id, impact: v.impact, help: v.help,
            targets: v.nodes.map(n => n.target.join(' ')).slice(0, 5)})))))
          .catch(e => done(JSON.stringify([{id: 'axe-error', help: String(e), targets: []}])));
        """
    )
    return json.loads(result)
