"""How fast aufruf lays out tickets as ESC/POS bytes: tickets rendered per second with the
printer's native QR code and with a QR code sent as an image (each raster command), on 58 and
80 mm paper; beside a baseline measured in the same run: the same text lines through
python-escpos with no QR code at all (what the library costs before aufruf adds anything).

Run it from the repository root:

    PYTHONPATH=. .venv/bin/python bench/printing.py [--seconds S]

Single-threaded, in this process; each variant warms up, then renders for S seconds (default
2). Prints a table: tickets per second, milliseconds per ticket, bytes per ticket, and the
rate relative to the baseline.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import UTC, datetime

from escpos.printer import Dummy

from aufruf.printer.logic import PrinterSetup, TicketPrint, render_ticket

TICKET = TicketPrint(
    office_name="Bürgeramt Mitte – Rathausstraße",
    number="A017",
    service_names=["Führungszeugnis beantragen (Gebühr 13 €)", "Meldebescheinigung"],
    issued_at=datetime(2026, 11, 23, 8, 14, tzinfo=UTC),
    timezone="Europe/Berlin",
    people_ahead=12,
    url="https://termine.stadt.example/t/AAAAAAAAAAE7q9Xk2mR9vT4wZ1bN8cL5hJ0pQs3dFgHuYw",
)


def baseline() -> bytes:
    """The ticket's text lines through python-escpos, without QR code or layout choices."""
    p = Dummy(profile="TM-T88V")
    p.hw("INIT")
    p.charcode("CP858")
    for line in (
        TICKET.office_name,
        "Ihre Nummer / Your number",
        TICKET.number,
        *TICKET.service_names,
        "23.11.2026, 09:14 Uhr",
        "Vor Ihnen: 12",
        "Ahead of you: 12",
        "Scannen für den Live-Status",
        "Scan for live status",
    ):
        p.textln(line)
    p.cut()
    return p.output


def measure(render: Callable[[], bytes], seconds: float) -> tuple[float, int]:
    """Tickets per second over `seconds` (after a short warm-up), and bytes per ticket."""
    size = len(render())
    warm_until = time.perf_counter() + min(0.3, seconds / 4)
    while time.perf_counter() < warm_until:
        render()
    count, start = 0, time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        render()
        count += 1
    return count / (time.perf_counter() - start), size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="measuring time per variant")
    args = parser.parse_args()

    variants: list[tuple[str, Callable[[], bytes]]] = [("baseline: text only, no QR", baseline)]
    for width in (58, 80):
        native = PrinterSetup(paper_width_mm=width, qr_mode="native")
        variants.append((f"{width} mm, native QR", lambda s=native: render_ticket(TICKET, s)))
    for width in (58, 80):
        for impl in ("bitImageRaster", "bitImageColumn", "graphics"):
            setup = PrinterSetup(paper_width_mm=width, qr_mode="image", image_impl=impl)
            variants.append(
                (f"{width} mm, image QR ({impl})", lambda s=setup: render_ticket(TICKET, s))
            )

    results = [(name, *measure(render, args.seconds)) for name, render in variants]
    base_rate = results[0][1]
    print(f"tickets rendered to ESC/POS, one thread, {args.seconds:g} s per variant")
    print(f"{'variant':<36} {'tickets/s':>10} {'ms/ticket':>10} {'bytes':>7} {'vs baseline':>12}")
    for name, rate, size in results:
        print(f"{name:<36} {rate:>10.0f} {1000 / rate:>10.2f} {size:>7} {rate / base_rate:>11.2f}x")


if __name__ == "__main__":
    main()
