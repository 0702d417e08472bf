"""Memory of the wall display over a day of calls: does the page grow?

Run it from the repository root (needs Chromium and chromedriver, as the browser tests do):

    .venv/bin/python -m bench.display_memory [--calls 3000] [--json PATH]

(as a module: run as a file, bench/queue.py would shadow the standard library's queue)

What it does, in a few minutes:

1. Creates a SQLite database in a temporary folder (the embedded default), migrates it and
   adds a location open all day with three counters, a kiosk and the clerks' tokens.
2. Serves the aufruf app with uvicorn as the other benchmarks do (bench/harness.py) and opens
   its wall display, /display/bench?speak=de,en, in headless Chromium at 1920x1080.
3. Feeds it a day: --calls times a kiosk draws a ticket and the next counter in turn calls the
   next one (which finishes the ticket it served before): three events per call, all through
   the real server and the display's websocket.
4. At checkpoints waits until the display has applied every event so far (its seq equals the
   location's last seq), forces a garbage collection through the Chrome DevTools Protocol
   (HeapProfiler.collectGarbage), then reads the JS heap (Runtime.getHeapUsage) and the DOM
   counters (Memory.getDOMCounters).
5. Prints the figures; the baseline is the same page in the same run after the first
   checkpoint (warm: every code path has run). Verdict: the heap grew if at the end it uses
   more than 10 % + 256 KB above the warm figure, the DOM grew if it has more nodes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aufruf import migrate
from aufruf.auth.service import create_token
from aufruf.db import Database
from aufruf.offices.model import Kiosk
from bench.harness import ROOT, SECRET, Connection, Server, start_server, wait_until_ready

LOCATION = "bench"
COUNTERS = 3
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
GROWTH_FACTOR, GROWTH_BYTES = 1.10, 256 * 1024


async def prepare(url: str) -> dict[str, Any]:
    from tests.builders import a_location

    db = Database(url)
    try:
        await migrate.upgrade(db.engine)
        await a_location(
            db,
            LOCATION,
            weekdays=tuple(range(7)),
            hours="00:00-23:59",
            holiday_state=None,
            counters=COUNTERS,
        )
        now = datetime.now(UTC)
        async with db.write() as session:
            session.add(Kiosk(id="bench-kiosk", location_id=LOCATION, name="Kiosk", active=True))
            await session.flush()
            kiosk = (await create_token(session, now, role="kiosk", location=LOCATION)).token
            clerks = [
                (
                    await create_token(
                        session, now, role="clerk", location=LOCATION, counter=f"{LOCATION}-{n}"
                    )
                ).token
                for n in range(1, COUNTERS + 1)
            ]
    finally:
        await db.dispose()
    return {"kiosk": kiosk, "clerks": clerks}


def open_browser() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--no-first-run",
        "--window-size=1920,1080",
        "--lang=de",
    ):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


class Feeder:
    """Draws and calls through the real server over keep-alive connections."""

    def __init__(self, port: int, tokens: dict[str, Any]) -> None:
        self.kiosk = Connection(port)
        self.counters = [Connection(port) for _ in range(COUNTERS)]
        self.tokens = tokens
        self.calls = 0
        self.seq = 0
        self.last_number = ""

    async def open_counters(self) -> None:
        for n, conn in enumerate(self.counters, start=1):
            path = f"/api/v1/counters/{LOCATION}-{n}/open"
            status, body = await conn.request("POST", path, token=self.tokens["clerks"][n - 1])
            assert status == 200, body

    async def call(self, count: int) -> None:
        draw = json.dumps({"service": "pass"}).encode()
        for _ in range(count):
            status, body = await self.kiosk.request(
                "POST", f"/api/v1/locations/{LOCATION}/tickets", draw, token=self.tokens["kiosk"]
            )
            assert status == 201, body
            n = self.calls % COUNTERS
            status, body = await self.counters[n].request(
                "POST",
                f"/api/v1/counters/{LOCATION}-{n + 1}/call-next",
                token=self.tokens["clerks"][n],
            )
            assert status == 200, body
            self.last_number = json.loads(body)["number"]
            self.calls += 1

    async def last_seq(self) -> int:
        """The location's last seq (the events read in pages from the last one known)."""
        while True:
            path = f"/api/v1/locations/{LOCATION}/events?after={self.seq}&limit=1000"
            status, body = await self.kiosk.request("GET", path, token=self.tokens["clerks"][0])
            assert status == 200, body
            events = json.loads(body)
            if not events:
                return self.seq
            self.seq = events[-1]["seq"]

    async def close(self) -> None:
        for conn in (self.kiosk, *self.counters):
            await conn.close()


def wait_for(browser: Any, seq: int, timeout: float = 60) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, timeout).until(
        lambda b: b.execute_script("return window.aufrufDisplay && aufrufDisplay.seq") == seq
    )


def measure(browser: Any) -> dict[str, int]:
    browser.execute_cdp_cmd("HeapProfiler.enable", {})
    for _ in range(2):  # a second pass collects what the first one's finalisers freed
        browser.execute_cdp_cmd("HeapProfiler.collectGarbage", {})
    heap = browser.execute_cdp_cmd("Runtime.getHeapUsage", {})
    dom = browser.execute_cdp_cmd("Memory.getDOMCounters", {})
    return {
        "heap_used": int(heap["usedSize"]),
        "heap_total": int(heap["totalSize"]),
        "dom_nodes": int(dom["nodes"]),
        "listeners": int(dom["jsEventListeners"]),
        "elements": int(browser.execute_script("return document.getElementsByTagName('*').length")),
        "calls_kept": int(browser.execute_script("return aufrufDisplay.calls().length")),
        "announced_kept": int(browser.execute_script("return aufrufDisplay.announced.length")),
    }


def checkpoints(calls: int) -> list[int]:
    marks = [0, min(100, calls)] + [round(calls * f / 6) for f in range(1, 7)]
    return sorted(set(marks))


async def run(args: argparse.Namespace) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="aufruf-display-memory-"))
    url = f"sqlite+aiosqlite:///{folder / 'aufruf.db'}"
    tokens = await prepare(url)
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        "AUFRUF_DATABASE_URL": url,
        "AUFRUF_SECRET_KEY": SECRET,
    }
    server: Server = start_server("aufruf", "aufruf_app:create", env, folder)
    browser = None
    feeder = Feeder(server.port, tokens)
    rows: list[dict[str, Any]] = []
    try:
        await wait_until_ready(server, "/health")
        await feeder.open_counters()
        browser = open_browser()
        browser.get(f"http://127.0.0.1:{server.port}/display/{LOCATION}?speak=de,en")
        started = time.monotonic()
        for mark in checkpoints(args.calls):
            await feeder.call(mark - feeder.calls)
            seq = await feeder.last_seq()
            wait_for(browser, seq)
            shown = browser.execute_script(
                "return document.getElementById('call-number').textContent"
            )
            assert mark == 0 or shown == feeder.last_number, (shown, feeder.last_number)
            row = {"calls": mark, "events": seq, **measure(browser)}
            row["seconds"] = round(time.monotonic() - started, 1)
            rows.append(row)
            print(
                f"{row['calls']:>6} {row['events']:>7} {row['heap_used'] / 1024:>10.0f}"
                f" {row['heap_total'] / 1024:>10.0f} {row['dom_nodes']:>7} {row['elements']:>8}"
                f" {row['listeners']:>9} {row['calls_kept']:>5} {row['seconds']:>7}",
                flush=True,
            )
    finally:
        await feeder.close()
        if browser is not None:
            browser.quit()
        server.stop()
    return verdict(rows)


def verdict(rows: list[dict[str, Any]]) -> dict[str, Any]:
    warm = rows[1] if len(rows) > 1 else rows[0]
    end = rows[-1]
    heap_limit = warm["heap_used"] * GROWTH_FACTOR + GROWTH_BYTES
    return {
        "rows": rows,
        "warm": warm,
        "end": end,
        "heap_grew": end["heap_used"] > heap_limit,
        "dom_grew": end["dom_nodes"] > warm["dom_nodes"],
        "heap_change_bytes": end["heap_used"] - warm["heap_used"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=3000, help="calls over the day (3000)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    print(f"wall display memory over {args.calls} calls (3 events each), headless Chromium")
    print(
        f"{'calls':>6} {'events':>7} {'heap KB':>10} {'total KB':>10} {'nodes':>7}"
        f" {'elements':>8} {'listeners':>9} {'kept':>5} {'seconds':>7}"
    )
    result = asyncio.run(run(args))
    warm, end = result["warm"], result["end"]
    print(
        f"baseline (warm, after {warm['calls']} calls): heap {warm['heap_used'] / 1024:.0f} KB,"
        f" {warm['dom_nodes']} DOM nodes"
    )
    print(
        f"after {end['calls']} calls: heap {end['heap_used'] / 1024:.0f} KB"
        f" ({result['heap_change_bytes'] / 1024:+.0f} KB), {end['dom_nodes']} DOM nodes"
    )
    print(
        "verdict: the JS heap "
        + ("GREW" if result["heap_grew"] else "did not grow")
        + f" (limit: warm x {GROWTH_FACTOR} + {GROWTH_BYTES // 1024} KB); the DOM "
        + ("GREW" if result["dom_grew"] else "did not grow")
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 1 if result["heap_grew"] or result["dom_grew"] else 0


if __name__ == "__main__":
    sys.exit(main())
