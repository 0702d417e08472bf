"""What a person holding the printed ticket notices, checked on the real ESC/POS bytes.

A small decoder below reads the byte stream the way a printer does: commands, code page
switches, text lines, the native QR payload and bit images. Unknown commands fail the test,
so a change in what the library emits cannot slip past unread.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from PIL import Image, ImageOps

from aufruf.printer.logic import PrinterSetup, TicketPrint, render_ticket
from tests.conftest import REQUIRE_ALL

ESC, GS, LF = 0x1B, 0x1D, 0x0A
URL = "https://termine.example.de/t/q7Xk2mR9vT4wZ1bN8cL5hJ"
OFFICE = "Bürgeramt Mitte – Straße"
SERVICE = "Führungszeugnis beantragen (Gebühr 37 €, Ausweis mitbringen)"


# --- builders -----------------------------------------------------------------------------


def a_ticket(
    *,
    office: str = OFFICE,
    services: tuple[str, ...] = (SERVICE,),
    people_ahead: int | None = 3,
    appointment_at: datetime | None = None,
) -> TicketPrint:
    return TicketPrint(
        office_name=office,
        number="A017",
        service_names=list(services),
        issued_at=datetime(2026, 11, 23, 8, 14, tzinfo=UTC),  # 09:14 in Berlin
        timezone="Europe/Berlin",
        people_ahead=people_ahead,
        url=URL,
        appointment_at=appointment_at,
    )


def a_printer(width: int = 80, **kwargs) -> PrinterSetup:
    return PrinterSetup(paper_width_mm=width, **kwargs)  # type: ignore[arg-type]


# --- the decoder ----------------------------------------------------------------------------

# ESC and GS commands with a fixed number of argument bytes that the ticket may use.
ESC_FIXED = {b"@": 0, b"2": 0, b"t": 1, b"E": 1, b"a": 1, b"!": 1, b"-": 1, b"M": 1, b"{": 1}
ESC_FIXED |= {b"d": 1, b"3": 1, b"r": 1, b"G": 1}
GS_FIXED = {b"!": 1, b"B": 1, b"b": 1, b"|": 1}


@dataclass
class Op:
    kind: str  # "text", "cmd", "qr", "image"
    name: bytes = b""
    args: bytes = b""
    image: Image.Image | None = None


@dataclass
class Stream:
    ops: list[Op] = field(default_factory=list)

    def commands(self, name: bytes) -> list[Op]:
        return [op for op in self.ops if op.kind == "cmd" and op.name == name]

    def index(self, op: Op) -> int:
        return next(i for i, o in enumerate(self.ops) if o is op)

    def text(self) -> bytes:
        return b"".join(op.args for op in self.ops if op.kind == "text")

    def first_text_index(self) -> int:
        return next(i for i, op in enumerate(self.ops) if op.kind == "text" and op.args.strip())

    def printed_lines(self) -> list[tuple[str, int]]:
        """Each printed line with its width in Font A columns (enlarged text counts more)."""
        lines: list[tuple[str, int]] = []
        current, columns, scale = "", 0, 1
        for op in self.ops:
            if op.kind == "cmd" and op.name == b"GS !":
                scale = (op.args[0] >> 4) + 1
            elif op.kind == "cmd" and op.name == b"ESC !":
                scale = 2 if op.args[0] & 0x20 else 1
            elif op.kind == "cmd" and op.name == b"ESC @":
                scale = 1
            elif op.kind == "text":
                for byte in op.args:
                    if byte == LF:
                        lines.append((current, columns))
                        current, columns = "", 0
                    else:
                        current += bytes([byte]).decode("cp858")
                        columns += scale
        return lines


def _raster(width_bytes: int, height: int, data: bytes) -> Image.Image:
    # ESC/POS: bit 1 is a black dot; PIL mode "1": bit 1 is white.
    img = Image.frombytes("1", (width_bytes * 8, height), data)
    return ImageOps.invert(img.convert("L"))


def _column_stripe(width: int, data: bytes) -> Image.Image:
    # ESC * 33: per column 3 bytes, 24 dots from top to bottom, most significant bit first.
    img = Image.new("L", (width, 24), 255)
    for x in range(width):
        for y in range(24):
            if data[x * 3 + y // 8] & (0x80 >> (y % 8)):
                img.putpixel((x, y), 0)
    return img


def decode(stream: bytes) -> Stream:
    out = Stream()
    stripes: list[Image.Image] = []
    i = 0
    while i < len(stream):
        b = stream[i]
        if b not in (ESC, GS):
            j = i
            while j < len(stream) and stream[j] not in (ESC, GS):
                j += 1
            out.ops.append(Op("text", args=stream[i:j]))
            i = j
            continue
        cmd = stream[i + 1 : i + 2]
        if b == ESC and cmd in ESC_FIXED:
            n = ESC_FIXED[cmd]
            out.ops.append(Op("cmd", b"ESC " + cmd, stream[i + 2 : i + 2 + n]))
            i += 2 + n
        elif b == ESC and cmd == b"*":  # column bit image, one 8- or 24-dot stripe
            m, width = stream[i + 2], stream[i + 3] | stream[i + 4] << 8
            assert m == 33, f"only 24-dot double density expected, got ESC * {m}"
            size = width * 3
            stripes.append(_column_stripe(width, stream[i + 5 : i + 5 + size]))
            i += 5 + size
        elif b == GS and cmd in GS_FIXED:
            n = GS_FIXED[cmd]
            out.ops.append(Op("cmd", b"GS " + cmd, stream[i + 2 : i + 2 + n]))
            i += 2 + n
        elif b == GS and cmd == b"V":  # cut; 65/66 carry a feed amount
            m = stream[i + 2]
            n = 1 if m in (65, 66) else 0
            out.ops.append(Op("cmd", b"GS V", stream[i + 2 : i + 3 + n]))
            i += 3 + n
        elif b == GS and stream[i + 1 : i + 3] in (b"(k", b"(L"):
            size = stream[i + 3] | stream[i + 4] << 8
            body = stream[i + 5 : i + 5 + size]
            name = b"GS " + stream[i + 1 : i + 3]
            out.ops.append(Op("cmd", name, body))
            if name == b"GS (L" and body[:2] == b"0p":  # m fn a bx by c xL xH yL yH d1...dk
                width, height = body[6] | body[7] << 8, body[8] | body[9] << 8
                out.ops.append(
                    Op("image", name, image=_raster((width + 7) // 8, height, body[10:]))
                )
            i += 5 + size
        elif b == GS and cmd == b"v":  # GS v 0 m xL xH yL yH d1...dk
            assert stream[i + 2] == ord("0")
            xb = stream[i + 4] | stream[i + 5] << 8
            y = stream[i + 6] | stream[i + 7] << 8
            data = stream[i + 8 : i + 8 + xb * y]
            assert len(data) == xb * y, "raster image cut short"
            out.ops.append(Op("image", b"GS v0", image=_raster(xb, y, data)))
            i += 8 + xb * y
        else:
            raise AssertionError(f"unknown command {stream[i : i + 3]!r} at byte {i}")
        if stripes and (i >= len(stream) or stream[i : i + 2] != b"\x1b*"):
            if i < len(stream) and stream[i] == LF:  # the line feed that ends a stripe
                i += 1
                continue
            whole = Image.new("L", (stripes[0].width, 24 * len(stripes)), 255)
            for k, stripe in enumerate(stripes):
                whole.paste(stripe, (0, 24 * k))
            out.ops.append(Op("image", b"ESC *", image=whole))
            stripes = []
    return out


def decode_qr_image(img: Image.Image) -> list[bytes]:
    try:
        from pyzbar import pyzbar
    except (ImportError, OSError) as error:
        if REQUIRE_ALL:
            pytest.fail(f"zbar not installed but AUFRUF_TEST_REQUIRE_ALL=1: {error}")
        pytest.skip("zbar not installed")
    quiet = ImageOps.expand(img, border=40, fill=255)  # the printed paper's white margin
    return [symbol.data for symbol in pyzbar.decode(quiet)]


# --- the ticket ------------------------------------------------------------------------------


@pytest.mark.parametrize("width", [58, 80])
def test_printer_is_reset_and_told_the_code_page_before_any_text(width):
    stream = decode(render_ticket(a_ticket(), a_printer(width)))

    assert stream.ops[0].name == b"ESC @"
    (select, *_) = stream.commands(b"ESC t")
    assert stream.index(select) < stream.first_text_index()
    assert select.args == bytes([19])  # CP858 in both profiles


@pytest.mark.parametrize("width", [58, 80])
def test_umlauts_sharp_s_and_euro_print_in_cp858_without_switching_tables(width):
    ticket = a_ticket(services=("Reisepass (37 €)",))

    stream = decode(render_ticket(ticket, a_printer(width)))

    text = stream.text()
    # CP858 has no en dash: the office name prints with a hyphen, the rest byte for byte.
    assert "Bürgeramt Mitte - Straße".encode("cp858") in text
    assert "Reisepass (37 €)".encode("cp858") in text
    assert "37 €".encode("cp858") == b"37 \xd5"
    assert len(stream.commands(b"ESC t")) == 1, "the code page is switched after the selection"


def test_an_amount_is_not_split_from_its_euro_sign_on_narrow_paper():
    stream = decode(render_ticket(a_ticket(), a_printer(58)))

    assert any("37 €" in line for line, _ in stream.printed_lines())


def test_a_control_character_in_a_name_cannot_reach_the_printer():
    ticket = a_ticket(office="Bürgeramt\x1bd\x09Nord")

    stream = decode(render_ticket(ticket, a_printer(80)))

    assert "Bürgeramt d\tNord".encode("cp858") not in stream.text()
    assert not [op for op in stream.commands(b"ESC d") if op.args == b"\x09"]


@pytest.mark.parametrize("width", [58, 80])
def test_native_qr_code_carries_exactly_the_url_and_is_printed(width):
    stream = decode(render_ticket(a_ticket(), a_printer(width, qr_mode="native")))

    qr = [op for op in stream.commands(b"GS (k") if op.args[:1] == b"1"]  # cn = 49: QR
    (store,) = [op for op in qr if op.args[1] == 80]  # fn = 80: store the data
    assert store.args[2:3] == b"0"  # m = 48
    assert store.args[3:] == URL.encode("ascii")
    (print_,) = [op for op in qr if op.args[1] == 81]  # fn = 81: print the stored symbol
    assert stream.index(print_) > stream.index(store)
    align = [op for op in stream.commands(b"ESC a") if stream.index(op) < stream.index(store)]
    assert align[-1].args == b"\x01", "the QR code is not centred"


@pytest.mark.parametrize("impl", ["bitImageRaster", "bitImageColumn", "graphics"])
@pytest.mark.parametrize("width", [58, 80])
def test_image_qr_code_scans_as_the_url(width, impl):
    stream = decode(render_ticket(a_ticket(), a_printer(width, qr_mode="image", image_impl=impl)))

    assert not stream.commands(b"GS (k") or all(
        op.args[:1] != b"1" for op in stream.commands(b"GS (k")
    ), "an image QR must not use the native QR command"
    (image_op,) = [op for op in stream.ops if op.kind == "image"]
    assert image_op.image is not None
    assert decode_qr_image(image_op.image) == [URL.encode("ascii")]


@pytest.mark.parametrize(("width", "columns"), [(58, 32), (80, 48)])
@pytest.mark.parametrize("qr_mode", ["native", "image"])
def test_no_line_is_wider_than_the_paper(width, columns, qr_mode):
    long_name = "Beantragung einer Aufenthaltserlaubnis zum Zweck der Erwerbstätigkeit"
    ticket = a_ticket(
        office="Bezirksamt Charlottenburg-Wilmersdorf, Bürgeramt Heerstraße",
        services=(long_name, "Meldebescheinigung", "X" * 70),
        appointment_at=datetime(2026, 11, 23, 8, 20, tzinfo=UTC),
    )

    stream = decode(render_ticket(ticket, a_printer(width, qr_mode=qr_mode)))

    lines = stream.printed_lines()
    too_wide = [(line, used) for line, used in lines if used > columns]
    assert not too_wide
    printed = " ".join(line for line, _ in lines)
    assert "Erwerbstätigkeit" in printed  # wrapped, not cut off
    assert "Meldebescheinigung" in printed


@pytest.mark.parametrize("width", [58, 80])
def test_the_number_is_printed_large(width):
    stream = decode(render_ticket(a_ticket(), a_printer(width)))

    (number,) = [op for op in stream.ops if op.kind == "text" and b"A017" in op.args]
    sizes = [op for op in stream.commands(b"GS !") if stream.index(op) < stream.index(number)]
    assert sizes and sizes[-1].args[0] != 0
    after = [op for op in stream.commands(b"GS !") if stream.index(op) > stream.index(number)]
    assert after and after[0].args[0] == 0, "text after the number is still enlarged"


def test_issue_time_is_printed_in_german_format_in_the_offices_zone():
    stream = decode(render_ticket(a_ticket(), a_printer(80)))

    assert b"23.11.2026, 09:14 Uhr" in stream.text()


def test_appointment_time_is_printed_for_appointments_only():
    booked = datetime(2026, 11, 23, 8, 20, tzinfo=UTC)

    with_appointment = decode(render_ticket(a_ticket(appointment_at=booked), a_printer(58)))
    walk_in = decode(render_ticket(a_ticket(), a_printer(58)))

    assert b"Termin 09:20" in with_appointment.text()
    assert b"Termin" not in walk_in.text()
    assert b"09:20" not in walk_in.text()


def test_people_ahead_are_printed_in_german_and_english():
    text = decode(render_ticket(a_ticket(people_ahead=3), a_printer(58))).text()

    assert b"Vor Ihnen: 3" in text
    assert b"Ahead of you: 3" in text


def test_people_ahead_are_left_out_when_unknown():
    text = decode(render_ticket(a_ticket(people_ahead=None), a_printer(80))).text()

    assert b"Vor Ihnen" not in text
    assert b"Ahead of you" not in text


@pytest.mark.parametrize("width", [58, 80])
def test_hint_in_both_languages_and_the_paper_is_cut(width):
    stream = decode(render_ticket(a_ticket(), a_printer(width)))

    assert "Scannen für den Live-Status".encode("cp858") in stream.text()
    assert b"Scan for live status" in stream.text()
    assert stream.ops[-1].name == b"GS V"
