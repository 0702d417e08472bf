"""What a person reads on a printed ticket, from its ESC/POS bytes (the decoder of the layout
tests): the text in CP858 and the native QR code's payload."""

from __future__ import annotations

from dataclasses import dataclass

from tests.printer.test_ticket_layout import decode


@dataclass(frozen=True)
class Paper:
    text: str
    qr: str | None

    def has(self, words: str) -> bool:
        return words in self.text


def read_paper(data: bytes) -> Paper:
    stream = decode(data)
    qr = [
        op.args[3:].decode("ascii")
        for op in stream.commands(b"GS (k")
        if op.args[:1] == b"1" and op.args[1] == 80
    ]
    return Paper(stream.text().decode("cp858"), qr[0] if qr else None)
