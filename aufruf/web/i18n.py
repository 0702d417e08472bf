"""Languages of the pages: message catalogs compiled in memory at start-up, the language
picked per request, jinja2's i18n extension bound to the page's language.

Message ids are English. A language's catalog is every `.po` file in
`aufruf/web/locale/<lang>/LC_MESSAGES/`, read together: `messages.po` for the staff pages and
shared texts, and one file per area of the citizens' pages (`display.po`, `kiosk.po`,
`booking.po`, …), so each area keeps its own texts. No build step: the .po files are read and
compiled when first needed.

Staff pages are offered in LANGUAGES; every page and message a citizen gets in
PUBLIC_LANGUAGES. To add a language, add its catalogs and a line to the list (right-to-left
scripts such as Arabic set dir="rtl").
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from jinja2 import Environment, pass_context
from jinja2.runtime import Context
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
LANGUAGE_COOKIE = "aufruf_lang"
DEFAULT_LANGUAGE = "de"


@dataclass(frozen=True)
class Language:
    code: str
    name: str  # in the language itself, as the switch shows it
    direction: str = "ltr"


LANGUAGES: dict[str, Language] = {
    "de": Language("de", "Deutsch"),
    "en": Language("en", "English"),
}

PUBLIC_LANGUAGES: dict[str, Language] = {
    **LANGUAGES,
    "tr": Language("tr", "Türkçe"),
    "ru": Language("ru", "Русский"),
    "uk": Language("uk", "Українська"),
    "ar": Language("ar", "العربية", "rtl"),
}


def accepted_languages(header: str | None) -> list[str]:
    """The primary language codes of an Accept-Language header, most wanted first."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((header or "").split(",")):
        tag, _, params = part.strip().partition(";")
        code = tag.strip().split("-")[0].lower()
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if code and code != "*" and quality > 0:
            ranked.append((-quality, position, code))
    return [code for _, _, code in sorted(ranked)]


def pick_language(
    query: str | None,
    cookie: str | None,
    accept_language: str | None,
    offered: Mapping[str, Language] = LANGUAGES,
) -> str:
    """?lang= first, then the remembered choice, then the browser's wishes, else German."""
    for choice in (query, cookie):
        if choice and choice.lower() in offered:
            return choice.lower()
    for code in accepted_languages(accept_language):
        if code in offered:
            return code
    return DEFAULT_LANGUAGE


def language_of(connection: ASGIConnection, offered: Mapping[str, Language] = LANGUAGES) -> str:
    return pick_language(
        connection.query_params.get("lang"),
        connection.cookies.get(LANGUAGE_COOKIE),
        connection.headers.get("accept-language"),
        offered,
    )


def language_cookies(connection: ASGIConnection) -> list[Cookie]:
    """Remember a language chosen with ?lang= for the next pages (a year)."""
    chosen = (connection.query_params.get("lang") or "").lower()
    if chosen not in PUBLIC_LANGUAGES or chosen == connection.cookies.get(LANGUAGE_COOKIE):
        return []
    return [
        Cookie(key=LANGUAGE_COOKIE, value=chosen, max_age=365 * 24 * 3600, samesite="lax", path="/")
    ]


@cache
def translations(language: str) -> Translations:
    """The compiled catalogs of `language`, all its .po files together (none for an unknown
    language: English message ids)."""
    merged = Translations()
    for catalog in catalogs(language):
        buffer = io.BytesIO()
        write_mo(buffer, catalog)
        buffer.seek(0)
        part = Translations(fp=buffer)
        merged.merge(part)
        merged.plural = part.plural  # merge() keeps the messages, not the plural rule
    return merged


def catalogs(language: str) -> list[Catalog]:
    """Every catalog file of `language`, parsed, in file name order."""
    folder = LOCALE_DIR / language / "LC_MESSAGES"
    found = []
    for po_file in sorted(folder.glob("*.po")):
        with po_file.open("rb") as fp:
            found.append(read_po(fp, locale=language))
    return found


def gettext(language: str, message: str) -> str:
    return translations(language).gettext(message)


def ngettext(language: str, singular: str, plural: str, n: int) -> str:
    return translations(language).ngettext(singular, plural, n)


def _language(context: Context) -> str:
    return context.get("lang") or DEFAULT_LANGUAGE


class _PageTranslations:
    """What jinja2's i18n extension installs: each call translates into the language of the
    page being rendered (the context variable `lang`), so one environment serves them all."""

    @staticmethod
    @pass_context
    def gettext(context: Context, message: str) -> str:
        return translations(_language(context)).gettext(message)

    @staticmethod
    @pass_context
    def ngettext(context: Context, singular: str, plural: str, n: int) -> str:
        return translations(_language(context)).ngettext(singular, plural, n)

    @staticmethod
    @pass_context
    def pgettext(context: Context, msgctxt: str, message: str) -> str:
        return translations(_language(context)).pgettext(msgctxt, message)

    @staticmethod
    @pass_context
    def npgettext(context: Context, msgctxt: str, singular: str, plural: str, n: int) -> str:
        return translations(_language(context)).npgettext(msgctxt, singular, plural, n)


def install_i18n(env: Environment) -> None:
    env.add_extension("jinja2.ext.i18n")
    env.install_gettext_translations(_PageTranslations(), newstyle=True)  # type: ignore[attr-defined]


def language_context(
    connection: ASGIConnection, offered: Mapping[str, Language] = LANGUAGES
) -> dict[str, Any]:
    """What every page's base layout needs: lang, dir and the language switch; citizens' pages
    pass `offered=PUBLIC_LANGUAGES`."""
    lang = language_of(connection, offered)
    query = [(k, v) for k, v in connection.query_params.multi_items() if k != "lang"]
    switch = []
    for code, language in offered.items():
        url = f"{connection.url.path}?{urlencode([*query, ('lang', code)])}"
        switch.append({"code": code, "name": language.name, "url": url, "current": code == lang})
    return {"lang": lang, "dir": offered[lang].direction, "languages": switch}
