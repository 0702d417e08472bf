"""The on-screen QR code: an SVG that a camera reads back to the phone-view address."""

from __future__ import annotations

import re

import pytest

from aufruf.kiosk.qr import qr_svg

pyzbar = pytest.importorskip("pyzbar.pyzbar")
Image = pytest.importorskip("PIL.Image")
ImageDraw = pytest.importorskip("PIL.ImageDraw")


def painted(svg: str, scale: int = 8):
    """The SVG's path drawn as a picture (each `M x y h w v1 …z` is one row of dark modules)."""
    size = int(re.search(r'viewBox="0 0 (\d+) \d+"', svg).group(1))
    image = Image.new("L", (size * scale, size * scale), 255)
    draw = ImageDraw.Draw(image)
    for x, y, width in re.findall(r"M(\d+) (\d+)h(\d+)v1h-\d+z", svg):
        left, top = int(x) * scale, int(y) * scale
        draw.rectangle([left, top, left + int(width) * scale - 1, top + scale - 1], fill=0)
    return image


def test_the_svg_reads_back_to_the_phone_view_address():
    url = (
        "https://termine.example.org/t/AAAAAAAAAAAAAAAA.bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
    )

    svg = qr_svg(url, "QR-Code")

    [found] = pyzbar.decode(painted(svg))
    assert found.data.decode() == url


def test_the_svg_has_an_accessible_name_and_escapes_it():
    svg = qr_svg("x", 'Code "live" <view>')

    assert 'role="img"' in svg
    assert 'aria-label="Code &#34;live&#34; &lt;view&gt;"' in svg
