"""Every text of the wall display and the phone view (their templates, the base layout and the
strings their pages hand to the scripts) is translated into every public language."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.extract import extract_from_file

from aufruf.web.i18n import PUBLIC_LANGUAGES, catalogs

PACKAGE = Path(__file__).resolve().parents[2] / "aufruf"
TEMPLATES = [
    PACKAGE / "web" / "templates" / "base.html",
    *sorted((PACKAGE / "display" / "templates" / "display").glob("*.html")),
]
PAGES = [PACKAGE / "display" / "wall.py", PACKAGE / "display" / "phone.py"]


def used_messages() -> set[str]:
    found: set[str] = set()
    for template in TEMPLATES:
        for _, message, _, _ in extract_from_file(
            "jinja2.ext:babel_extract", template, options={"extensions": "jinja2.ext.i18n"}
        ):
            found.add(message)
    for module in PAGES:
        for _, message, _, _ in extract_from_file("python", module, keywords={"gettext": (2,)}):
            found.add(message)
    return found


def translated(language: str) -> dict[str, str]:
    texts: dict[str, str] = {}
    for catalog in catalogs(language):
        for message in catalog:
            if message.id:
                texts[message.id] = message.string
    return texts


def test_the_live_views_use_messages():
    messages = used_messages()
    assert "It's your turn: %(counter)s" in messages
    assert "Number %(number)s, please go to %(counter)s" in messages
    assert "Skip to main content" in messages


@pytest.mark.parametrize("language", sorted(PUBLIC_LANGUAGES))
def test_every_public_language_has_every_message(language):
    texts = translated(language)
    missing = sorted(m for m in used_messages() if m not in texts)
    untranslated = sorted(m for m in used_messages() if language != "en" and not texts.get(m))

    assert missing == []
    assert untranslated == []


@pytest.mark.parametrize("language", sorted(set(PUBLIC_LANGUAGES) - {"en"}))
def test_translations_keep_their_placeholders(language):
    texts = translated(language)
    for message in used_messages():
        for placeholder in ("%(number)s", "%(counter)s", "%(minutes)s", "%(location)s"):
            assert (placeholder in message) == (placeholder in texts[message]), (message, language)
