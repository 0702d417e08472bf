"""The booking site in six languages: every message its templates and pages use is in every
public language's catalogs, translated, with the same placeholders; dates are written the
way each language writes them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_file

from aufruf.web.i18n import PUBLIC_LANGUAGES, catalogs
from tests.builders import a_location

BOOKING = Path(__file__).resolve().parents[2] / "aufruf" / "booking"
BASE = BOOKING.parent / "web" / "templates" / "base.html"
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def used_messages() -> set[str | tuple[str, ...]]:
    """Every message of the booking templates, the base layout and the booking page modules."""
    found: set = set()
    for template in [BASE, *sorted((BOOKING / "templates").rglob("*.html"))]:
        for _, message, _, _ in extract_from_file(
            "jinja2.ext:babel_extract", template, options={"extensions": "jinja2.ext.i18n"}
        ):
            found.add(message)
    for module in ("pages.py", "manage.py", "views.py", "legal.py"):
        keywords = {"gettext": (2,), "ngettext": (2, 3)}
        for _, message, _, _ in extract_from_file("python", BOOKING / module, keywords=keywords):
            found.add(message)
    return found


def merged_catalog(language: str) -> dict:
    messages: dict = {}
    for catalog in catalogs(language):
        for message in catalog:
            if message.id:
                messages[message.id if isinstance(message.id, str) else message.id[0]] = message
    return messages


def test_the_booking_pages_use_messages_at_all():
    used = used_messages()
    assert "Appointment booking" in used
    assert ("%(num)s free time", "%(num)s free times") in used


@pytest.mark.parametrize("language", sorted(PUBLIC_LANGUAGES))
def test_every_message_is_translated_in_every_public_language(language):
    catalog = merged_catalog(language)
    missing, untranslated, wrong_placeholders = [], [], []
    for message in used_messages():
        key = message[0] if isinstance(message, tuple) else message
        entry = catalog.get(key)
        if entry is None:
            missing.append(key)
            continue
        strings = entry.string if isinstance(entry.string, tuple) else (entry.string,)
        if not all(strings) and language != "en":  # English: an empty text means the id
            untranslated.append(key)
        wanted = set(PLACEHOLDER.findall(key))
        for text in strings:
            # a plural form may say "one" or "two" in words instead of the number
            if not set(PLACEHOLDER.findall(text)) <= wanted or (
                not isinstance(message, tuple) and set(PLACEHOLDER.findall(text)) != wanted
            ):
                wrong_placeholders.append((key, text))

    assert missing == []
    assert untranslated == []
    assert wrong_placeholders == []


@pytest.mark.parametrize(
    ("language", "title", "date"),
    [
        ("de", "Schritt 5 von 6: Uhrzeit – Terminvergabe", "Dienstag, 24. November 2026"),
        ("en", "Step 5 of 6: Time – Appointment booking", "Tuesday, November 24, 2026"),
        ("tr", "Adım 5 / 6: Saat – Randevu sistemi", "24 Kasım 2026 Salı"),
        ("ru", "Шаг 5 из 6: Время – Запись на приём", "вторник, 24 ноября 2026"),
        ("uk", "Крок 5 з 6: Час – Запис на прийом", "вівторок, 24 листопада 2026"),
        ("ar", "الخطوة 5 من 6: الوقت – حجز المواعيد", "الثلاثاء، 24 نوفمبر 2026"),
    ],
)
async def test_a_step_speaks_the_chosen_language(db, client, language, title, date):
    await a_location(db)

    page = (
        await client.get(
            f"/time?authority=amt&service=pass&location=amt&day=2026-11-24&lang={language}"
        )
    ).text

    direction = "rtl" if language == "ar" else "ltr"
    assert f'<html lang="{language}" dir="{direction}">' in page
    assert f"<title>{title}</title>" in page
    assert date in page
