"""The pages' languages (German and English, from ?lang=, a cookie or Accept-Language), the base
layout's landmarks, and catalogs that translate every text the templates and pages use."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po

from aufruf.web.i18n import LANGUAGES, LOCALE_DIR, accepted_languages, catalogs, pick_language
from aufruf.web.templating import template_directories

ROOT = Path(__file__).resolve().parents[2] / "aufruf"


@pytest.mark.parametrize(
    ("query", "cookie", "accept", "expected"),
    [
        (None, None, None, "de"),
        (None, None, "en-GB,en;q=0.9,de;q=0.8", "en"),
        (None, None, "fr-FR,fr;q=0.9,en;q=0.5,de;q=0.7", "de"),
        (None, None, "fr, es", "de"),
        (None, "en", "de", "en"),
        ("de", "en", "en", "de"),
        ("xx", None, "en", "en"),
        ("EN", None, None, "en"),
    ],
)
def test_the_language_comes_from_the_query_then_the_cookie_then_the_browser(
    query, cookie, accept, expected
):
    assert pick_language(query, cookie, accept) == expected


def test_accept_language_is_ordered_by_quality():
    assert accepted_languages("de;q=0.5, en-US, tr;q=0.8, *;q=0.1, ru;q=0") == ["en", "tr", "de"]


async def test_the_login_page_follows_the_browsers_language(browser, location):
    english = await browser().get("/login", headers={"Accept-Language": "en-US,en;q=0.9"})
    german = await browser().get("/login")

    assert '<html lang="en" dir="ltr">' in english.text
    assert "<h1>Staff sign-in</h1>" in english.text
    assert '<html lang="de" dir="ltr">' in german.text
    assert "<h1>Anmeldung für Mitarbeitende</h1>" in german.text
    assert '<label for="password">Passwort</label>' in german.text


async def test_the_language_switch_is_remembered(browser, location):
    client = browser()

    switched = await client.get("/login?lang=en", headers={"Accept-Language": "de"})
    later = await client.get("/login", headers={"Accept-Language": "de"})

    assert "aufruf_lang=en" in switched.headers["set-cookie"]
    assert '<html lang="en"' in later.text


async def test_the_base_layout_has_a_skip_link_a_language_switch_and_a_main_landmark(
    browser, location
):
    page = (await browser().get("/login?next=/desk")).text

    assert '<a class="skip-link" href="#main">Zum Inhalt springen</a>' in page
    assert '<main id="main" tabindex="-1">' in page
    assert '<nav class="language-switch" aria-label="Sprache">' in page
    assert 'href="/login?next=%2Fdesk&amp;lang=en" lang="en" hreflang="en"' in page
    assert 'lang="de" hreflang="de" aria-current="true"' in page
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert 'href="/static/aufruf.css"' in page


async def test_the_stylesheet_is_served_with_a_visible_focus(browser, location):
    css = await browser().get("/static/aufruf.css")

    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    assert ":focus-visible" in css.text


def _used_messages() -> set[str | tuple[str, str]]:
    """Every message id in the templates (jinja2's extractor) and in page code."""
    found: set = set()
    for directory in template_directories():
        for template in directory.rglob("*.html"):
            for _, message, _, _ in extract_from_file(
                "jinja2.ext:babel_extract", template, options={"extensions": "jinja2.ext.i18n"}
            ):
                found.add(message)
    for module in ROOT.glob("*/pages.py"):
        keywords = {"gettext": (2,), "ngettext": (2, 3)}
        for _, message, _, _ in extract_from_file("python", module, keywords=keywords):
            found.add(message)
    return found


def _catalog(language: str):
    """Every .po file of the language together, as the pages read them."""
    merged = Catalog(locale=language)
    for path in sorted((LOCALE_DIR / language / "LC_MESSAGES").glob("*.po")):
        for message in read_po(io.BytesIO(path.read_bytes()), locale=language):
            if message.id:
                merged[message.id] = message
    return merged


def test_a_language_reads_all_its_catalog_files(tmp_path, monkeypatch):
    from aufruf.web import i18n

    folder = tmp_path / "xx" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    for name, message, text in [("messages", "Hello", "Hallo"), ("kiosk", "Ticket", "Marke")]:
        (folder / f"{name}.po").write_text(
            f'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n\n'
            f'msgid "{message}"\nmsgstr "{text}"\n',
            encoding="utf-8",
        )
    monkeypatch.setattr(i18n, "LOCALE_DIR", tmp_path)
    i18n.translations.cache_clear()
    try:
        assert i18n.gettext("xx", "Hello") == "Hallo"
        assert i18n.gettext("xx", "Ticket") == "Marke"
    finally:
        i18n.translations.cache_clear()


def test_the_pages_use_messages_at_all():
    assert "Staff sign-in" in _used_messages()


@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_every_language_has_a_catalog_with_every_message(language):
    """In any of the language's catalog files (messages.po or an area's own)."""
    known = {m.id if isinstance(m.id, str) else m.id[0] for c in catalogs(language) for m in c}
    missing = [
        message
        for message in _used_messages()
        if (message[0] if isinstance(message, tuple) else message) not in known
    ]

    assert missing == []


def test_german_translates_every_message():
    catalog = _catalog("de")
    untranslated = [
        m.id for m in catalog if m.id and not (all(m.string) if m.pluralizable else m.string)
    ]

    assert untranslated == []
