"""`aufruf demo` on an empty directory: migrate, load the demo offices, serve. What a newcomer
sees after `make demo`."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

DEMO_LOCATIONS = {
    "buergeramt-mitte",
    "buergeramt-boele",
    "buergeramt-haspe",
    "buergeramt-hohenlimburg",
    "zulassungsstelle",
    "fahrerlaubnisstelle",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_serving(base: str, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited with {process.returncode}")
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)  # polling a starting server, not timing the product
    raise AssertionError("the server did not answer within a minute")


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    port = free_port()
    log = tmp_path / "server.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "aufruf.cli", "demo", "--port", str(port)],
            cwd=tmp_path,
            # this checkout's aufruf, whichever one the interpreter has installed
            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until_serving(base, process)
            yield base, log
        finally:
            process.terminate()
            process.wait(timeout=30)


def test_demo_serves_the_six_demo_locations(demo):
    base, log = demo
    locations = httpx.get(f"{base}/api/v1/locations").json()
    assert {loc["id"] for loc in locations} == DEMO_LOCATIONS
    mitte = next(loc for loc in locations if loc["id"] == "buergeramt-mitte")
    assert mitte["authority"] == "buergeramt"
    assert "fuehrungszeugnis" in mitte["services"]
    output = log.read_text()
    assert "loaded the demo offices" in output
    assert f"{base}/api/v1/locations" in output
    # the printed device token works, and the printed staff logins exist
    kiosk = next(line for line in output.splitlines() if "kiosk token" in line).split()[-1]
    me = httpx.get(f"{base}/api/v1/me", headers={"Authorization": f"Bearer {kiosk}"})
    assert me.json()["role"] == "kiosk"
    assert "staff login  clerk" in output


def test_demo_books_and_logs_no_secret(demo):
    base, log = demo
    days = httpx.get(
        f"{base}/api/v1/availability",
        params={"location": "buergeramt-mitte", "service": "personalausweis"},
    ).json()["days"]
    start = next(slot for day in days for slot in day["slots"])
    created = httpx.post(
        f"{base}/api/v1/appointments",
        json={
            "location": "buergeramt-mitte",
            "services": ["personalausweis"],
            "start": start,
            "name": "Erika Mustermann",
            "email": "erika@example.org",
        },
    )
    assert created.status_code == 201, created.text
    token = created.json()["token"]
    assert httpx.get(f"{base}/api/v1/appointments/{token}").json()["start"] == start
    assert token not in log.read_text()


def test_the_demo_kiosk_opens_with_the_printed_token(demo):
    base, log = demo
    printed = log.read_text()
    kiosk = next(line for line in printed.splitlines() if "kiosk token" in line).split()[-1]
    with httpx.Client(base_url=base) as browser:
        registered = browser.get("/kiosk/buergeramt-mitte", params={"token": kiosk})
        start = browser.get("/kiosk/buergeramt-mitte")
    assert registered.status_code == 303
    assert start.status_code == 200
    assert "Ich habe einen Termin" in start.text
    # the services as tiles, or "closed" outside the hours for walk-ins
    assert "Personalausweis beantragen" in start.text or "Geschlossen" in start.text
    assert kiosk not in log.read_text()[len(printed) :]  # the access log keeps it out
