"""The kiosk in the six public languages: every text it shows is translated in each, with the
placeholders intact and the language's own plural forms; Arabic right to left."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po

from aufruf.web.i18n import LOCALE_DIR, PUBLIC_LANGUAGES, catalogs, ngettext
from tests.kiosk.test_kiosk_pages import booked, check_in, office, registered, start_screen

__all__ = ["office"]  # the fixture, shared with the page tests

ROOT = Path(__file__).resolve().parents[2] / "aufruf"
TEMPLATES = [ROOT / "web" / "templates" / "base.html", *(ROOT / "kiosk").rglob("*.html")]
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def kiosk_messages() -> set[str | tuple[str, ...]]:
    """Every message id of the kiosk's screens: its templates, the base layout, its code."""
    found: set = set()
    for template in TEMPLATES:
        for _, message, _, _ in extract_from_file(
            "jinja2.ext:babel_extract", template, options={"extensions": "jinja2.ext.i18n"}
        ):
            found.add(message)
    for module in (ROOT / "kiosk").glob("*.py"):
        keywords = {"gettext": (2,), "ngettext": (2, 3)}
        for _, message, _, _ in extract_from_file("python", module, keywords=keywords):
            found.add(message)
    return found


def base_layout_messages() -> set[str]:
    """The texts of base.html, which every page shows."""
    return {
        message
        for _, message, _, _ in extract_from_file(
            "jinja2.ext:babel_extract", TEMPLATES[0], options={"extensions": "jinja2.ext.i18n"}
        )
    }


def translations_of(language: str) -> dict[str, object]:
    """message id -> its translation (a string, or the tuple of plural forms), all files."""
    known: dict[str, object] = {}
    for catalog in catalogs(language):
        for message in catalog:
            if message.id:
                key = message.id if isinstance(message.id, str) else message.id[0]
                known[key] = message.string
    return known


def test_the_kiosk_uses_messages_at_all():
    assert "I have an appointment" in kiosk_messages()
    assert "Skip to main content" in kiosk_messages()


@pytest.mark.parametrize("language", sorted(PUBLIC_LANGUAGES))
def test_every_kiosk_message_is_in_the_languages_catalogs(language):
    known = translations_of(language)
    missing = [
        message
        for message in kiosk_messages()
        if (message[0] if isinstance(message, tuple) else message) not in known
    ]

    assert missing == []


@pytest.mark.parametrize("language", sorted(PUBLIC_LANGUAGES))
def test_the_base_layouts_texts_are_in_the_shared_catalog_and_not_the_kiosks(language):
    folder = LOCALE_DIR / language / "LC_MESSAGES"
    shared = read_po(io.BytesIO((folder / "messages.po").read_bytes()), locale=language)
    kiosk = read_po(io.BytesIO((folder / "kiosk.po").read_bytes()), locale=language)
    layout = base_layout_messages()

    assert {"Skip to main content", "Language"} <= layout
    assert [m for m in layout if shared.get(m) is None] == []
    if language != "en":  # English message ids need no translation
        assert [m for m in layout if not shared.get(m).string] == []
    assert layout & {m.id for m in kiosk} == set()


@pytest.mark.parametrize("language", sorted(set(PUBLIC_LANGUAGES) - {"en"}))
def test_every_kiosk_message_is_translated_with_its_placeholders(language):
    known = translations_of(language)
    wrong = []
    for message in kiosk_messages():
        key = message[0] if isinstance(message, tuple) else message
        forms = known.get(key)
        forms = list(forms) if isinstance(forms, tuple | list) else [forms]
        wanted = set(PLACEHOLDER.findall(key))
        for form in forms:
            # a plural form may spell out its number ("one minute") instead of %(num)s
            if not form or set(PLACEHOLDER.findall(form)) - wanted:
                wrong.append((key, form))
            elif not isinstance(message, tuple) and set(PLACEHOLDER.findall(form)) != wanted:
                wrong.append((key, form))

    assert wrong == []


@pytest.mark.parametrize(
    ("language", "sentences"),
    [
        (
            "ru",
            {1: "Перед вами 1 человек.", 3: "Перед вами 3 человека.", 5: "Перед вами 5 человек."},
        ),
        ("uk", {1: "Перед вами 1 людина.", 3: "Перед вами 3 людини.", 11: "Перед вами 11 людей."}),
        ("ar", {1: "قبلك شخص واحد.", 2: "قبلك شخصان.", 4: "قبلك 4 أشخاص.", 12: "قبلك 12 شخصًا."}),
        ("de", {1: "Vor Ihnen ist 1 Person.", 2: "Vor Ihnen sind 2 Personen."}),
    ],
)
def test_numbers_take_the_languages_own_plural_forms(language, sentences):
    said = {
        n: ngettext(
            language, "%(num)s person is ahead of you.", "%(num)s people are ahead of you.", n
        )
        % {"num": n}
        for n in sentences
    }

    assert said == sentences


async def test_the_language_switch_leads_to_the_start_screen_and_arabic_is_right_to_left(
    client, office
):
    await registered(client, office)

    arabic = await start_screen(client, "ar")

    assert '<html lang="ar" dir="rtl">' in arabic
    for code in PUBLIC_LANGUAGES:
        assert f'href="/kiosk/amt?lang={code}" lang="{code}"' in arabic
    assert '<h2 id="appointment-heading">لدي موعد</h2>' in arabic
    assert 'action="/kiosk/amt/checkin?lang=ar"' in arabic


@pytest.mark.parametrize(
    ("language", "heading"),
    [
        ("tr", "Bu randevu iptal edildi"),
        ("ru", "Эта запись отменена"),
        ("uk", "Цей запис скасовано"),
        ("ar", "أُلغي هذا الموعد"),
    ],
)
async def test_a_refusal_is_said_in_the_visitors_language(
    client, office, db, clock, language, heading
):
    from sqlalchemy import select

    from aufruf.booking.model import Appointment
    from aufruf.booking.service import cancel

    code = await booked(db, clock, datetime(2026, 11, 23, 8, 20, tzinfo=UTC))
    async with db.write() as session:
        row = await session.scalar(select(Appointment).where(Appointment.code == code))
        await cancel(session, row, clock.now())
    await registered(client, office)

    answer = await check_in(client, code, lang=language)

    assert answer.status_code == 409
    assert f"<h1>{heading}</h1>" in answer.text
    assert f'lang="{language}"' in answer.text
