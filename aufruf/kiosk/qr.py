"""QR codes drawn on screen as inline SVG, so a ticket is usable even when its print failed."""

from __future__ import annotations

import qrcode
from markupsafe import Markup, escape


def qr_svg(text: str, label: str, *, border: int = 4) -> Markup:
    """An SVG image of the QR code of `text` (error correction M, `border` light modules
    around it), with `label` as its accessible name; each run of dark modules in a row is
    one rectangle of the path, drawn with crisp edges so a camera reads it off a screen."""
    qr = qrcode.QRCode(border=border, error_correction=qrcode.constants.ERROR_CORRECT_M)
    qr.add_data(text)
    qr.make(fit=True)
    matrix = qr.get_matrix()
    steps = []
    for y, row in enumerate(matrix):
        x = 0
        while x < len(row):
            if not row[x]:
                x += 1
                continue
            run = x
            while run < len(row) and row[run]:
                run += 1
            steps.append(f"M{x} {y}h{run - x}v1h{x - run}z")
            x = run
    size = len(matrix)
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" class="qr" viewBox="0 0 {size} {size}" '
        f'role="img" aria-label="{escape(label)}" shape-rendering="crispEdges">'
        f'<rect width="{size}" height="{size}" fill="#fff"/>'
        f'<path fill="#000" d="{"".join(steps)}"/></svg>'
    )
