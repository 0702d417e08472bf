"""The staff's printer texts (/admin/printers and the desk's printer line) in German and
English: every message the printer package's templates and pages use is translated in both."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.extract import extract_from_file

from aufruf.web.i18n import catalogs

PRINTER = Path(__file__).resolve().parents[2] / "aufruf" / "printer"
STAFF_LANGUAGES = ("de", "en")


def printer_messages() -> set[str]:
    found: set[str] = set()
    for template in PRINTER.rglob("*.html"):
        for _, message, _, _ in extract_from_file(
            "jinja2.ext:babel_extract", template, options={"extensions": "jinja2.ext.i18n"}
        ):
            found.add(message if isinstance(message, str) else message[0])
    for module in PRINTER.glob("*.py"):
        for _, message, _, _ in extract_from_file("python", module, keywords={"gettext": (2,)}):
            found.add(message)
    return found


def test_the_printer_pages_use_messages_at_all():
    assert {"Ticket printers", "not printed in time", "not tried yet"} <= printer_messages()


@pytest.mark.parametrize("language", STAFF_LANGUAGES)
def test_every_printer_message_is_translated(language):
    known = {
        message.id: message.string
        for catalog in catalogs(language)
        for message in catalog
        if isinstance(message.id, str) and message.id
    }

    assert sorted(m for m in printer_messages() if not known.get(m)) == []
