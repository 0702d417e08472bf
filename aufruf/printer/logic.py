"""What a ticket looks like on paper: ESC/POS bytes from plain data, no I/O and no clock.

The caller (the print worker or an agent) sends the bytes; this module only decides them.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

from escpos.printer import Dummy

PaperWidth = Literal[58, 80]
QrMode = Literal["native", "image"]
ImageImpl = Literal["bitImageRaster", "bitImageColumn", "graphics"]

# Characters per line in Font A (12x24 dots): 384 dots on 58 mm paper, 576 dots on 80 mm.
COLUMNS: dict[int, int] = {58: 32, 80: 48}

# Profiles from python-escpos's capability database with CP858, native QR, all three image
# commands and a cutter: Seiko's RP-F10 kiosk printer in its 58 mm setting, Epson's TM-T88V.
DEFAULT_PROFILES: dict[int, str] = {58: "RP-F10-58mm", 80: "TM-T88V"}

# Module size of the QR code in printer dots: about 0.6 / 0.75 mm at 203 dpi.
QR_MODULE_DOTS: dict[int, int] = {58: 5, 80: 6}

HINT_DE_EN = ("Scannen für den Live-Status", "Scan for live status")

# Typography that office and service names carry but thermal code pages lack.
_PLAIN = str.maketrans(
    {
        "\u2013": "-",  # en dash
        "\u2014": "-",  # em dash
        "\u2010": "-",
        "\u2011": "-",
        "\u201e": '"',  # „
        "\u201c": '"',  # “
        "\u201d": '"',  # ”
        "\u201a": "'",  # ‚
        "\u2018": "'",
        "\u2019": "'",
        "\u202f": "\u00a0",  # narrow no-break space
        "\u2026": "...",
    }
)


@dataclass(frozen=True)
class TicketPrint:
    """Everything printed on one ticket, already decided by the queue."""

    office_name: str
    number: str
    service_names: list[str]
    issued_at: datetime
    timezone: str
    people_ahead: int | None
    url: str
    appointment_at: datetime | None = None
    hint: tuple[str, str] = HINT_DE_EN


@dataclass(frozen=True)
class PrinterSetup:
    """The layout settings of one printer (from the offices file)."""

    paper_width_mm: PaperWidth = 80
    code_page: str = "CP858"
    qr_mode: QrMode = "native"
    image_impl: ImageImpl = "bitImageRaster"
    profile: str | None = None  # None: DEFAULT_PROFILES for the paper width

    def __post_init__(self) -> None:
        if self.paper_width_mm not in COLUMNS:
            raise ValueError(f"paper width must be 58 or 80 mm, not {self.paper_width_mm}")
        if self.qr_mode not in ("native", "image"):
            raise ValueError(f"unknown QR mode {self.qr_mode!r}")
        if self.image_impl not in ("bitImageRaster", "bitImageColumn", "graphics"):
            raise ValueError(f"unknown image implementation {self.image_impl!r}")

    @property
    def columns(self) -> int:
        return COLUMNS[self.paper_width_mm]

    @property
    def profile_name(self) -> str:
        return self.profile or DEFAULT_PROFILES[self.paper_width_mm]


_NBSP = "\u00a0"
# "37 €" stays on one line: textwrap does not break at a no-break space.
_AMOUNT_SPACE = re.compile(r"(?<=\d) (?=[€%])")


def printable(text: str) -> str:
    """Return `text` as one printable line: typographic characters made plain, and no control
    characters, so a name can never smuggle an ESC/POS command onto the paper."""
    plain = text.translate(_PLAIN)
    return "".join(ch if ch.isprintable() or ch == _NBSP else " " for ch in plain).strip()


def fit_lines(text: str, width: int) -> list[str]:
    """Return `text` wrapped at spaces into lines of at most `width` characters; words longer
    than a line are broken, an amount stays together with its unit."""
    glued = _AMOUNT_SPACE.sub(_NBSP, printable(text))
    wrapped = textwrap.wrap(glued, width, break_long_words=True) or [""]
    return [line.replace(_NBSP, " ") for line in wrapped]


def format_local(moment: datetime, timezone: str, pattern: str) -> str:
    """Return the aware `moment` as wall-clock time of `timezone` in `pattern`."""
    if moment.tzinfo is None:
        raise ValueError("times on a ticket must be timezone-aware")
    return moment.astimezone(ZoneInfo(timezone)).strftime(pattern)


def render_ticket(ticket: TicketPrint, setup: PrinterSetup) -> bytes:
    """Return the ESC/POS bytes of `ticket` for the printer described by `setup`.

    Promises: the stream starts with INIT and then one explicit code page selection, and never
    switches code page afterwards (text the page cannot hold prints as "?"); no text line is
    wider than the paper (32 / 48 characters of Font A); the number is printed enlarged with
    GS !; the QR code carries exactly `ticket.url`; the paper is fed and cut at the end.
    """
    width = setup.columns
    p = Dummy(profile=setup.profile_name)
    p.hw("INIT")
    # Forcing the code page emits ESC t n now and stops the library from switching tables
    # for characters it thinks another page renders better (it picks a Greek page for "€").
    p.charcode(setup.code_page)

    def lines(text: str) -> None:
        for line in fit_lines(text, width):
            p.textln(line)

    p.set(align="center", bold=True)
    lines(ticket.office_name)
    p.set(bold=False)
    p.ln()
    lines("Ihre Nummer / Your number")
    _print_number(p, printable(ticket.number), width)
    p.ln()
    for name in ticket.service_names:
        lines(name)
    p.ln()
    lines(format_local(ticket.issued_at, ticket.timezone, "%d.%m.%Y, %H:%M Uhr"))
    if ticket.appointment_at is not None:
        booked = format_local(ticket.appointment_at, ticket.timezone, "%H:%M")
        lines(f"Termin {booked} / Appointment {booked}")
    if ticket.people_ahead is not None:
        lines(f"Vor Ihnen: {ticket.people_ahead}")
        lines(f"Ahead of you: {ticket.people_ahead}")
    p.ln()
    _print_qr(p, ticket.url, setup)
    for hint in ticket.hint:
        lines(hint)
    p.cut()
    return p.output


def _print_number(p: Dummy, number: str, width: int) -> None:
    # Quadruple width and height when it fits on one line, else double, else normal.
    scale = next((s for s in (4, 2) if len(number) * s <= width), 1)
    p.set(custom_size=True, width=scale, height=scale, bold=True)
    p.textln(number[: width // scale])
    p.set(custom_size=True, width=1, height=1, bold=False)


def _print_qr(p: Dummy, url: str, setup: PrinterSetup) -> None:
    # ESC a centres both the native code and raster images; qr(center=True) does not work
    # natively and pads images to the profile's idea of the paper width.
    p.set(align="center")
    size = QR_MODULE_DOTS[setup.paper_width_mm]
    if setup.qr_mode == "native":
        p.qr(url, native=True, size=size)
        p.ln()
    else:
        p.qr(url, native=False, size=size, image_arguments={"impl": setup.image_impl})
