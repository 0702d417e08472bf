"""The pages a German public site must have: `/imprint`, `/privacy`, `/accessibility` (with a
contact for feedback on barriers). Their texts come from `site.toml` beside this module,
overridden key by key by the file named in AUFRUF_SITE_TEXTS (same format)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from litestar import Controller, Request, get
from litestar.response import Template

from aufruf.booking.pages import page, page_language
from aufruf.deps import SettingsDep

DEFAULTS = Path(__file__).with_name("site.toml")
PAGES = ("imprint", "privacy", "accessibility")


class SiteTextsError(ValueError):
    """The site texts file cannot be used; the message says why."""


@dataclass(frozen=True)
class Block:
    heading: bool
    text: str


@dataclass(frozen=True)
class LegalText:
    language: str  # the language the text is written in
    blocks: list[Block]
    contact: str


def _read(path: Path) -> dict:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SiteTextsError(f"{path}: {exc}") from None
    for name, section in data.items():
        if name not in PAGES or not isinstance(section, dict):
            raise SiteTextsError(f"{path}: unknown section [{name}] (known: {', '.join(PAGES)})")
        for key, value in section.items():
            if not isinstance(value, str):
                raise SiteTextsError(f"{path}: [{name}] {key} must be a text")
    return data


@cache
def site_texts(path: str | None) -> dict[str, dict[str, str]]:
    """The defaults with the texts of `path` (if given) laid over them, per page and key."""
    merged = {name: dict(section) for name, section in _read(DEFAULTS).items()}
    if path:
        for name, section in _read(Path(path)).items():
            merged.setdefault(name, {}).update(section)
    return merged


def legal_text(texts: dict[str, dict[str, str]], name: str, lang: str) -> LegalText:
    """Page `name` in `lang`, else in English (other languages) or German."""
    section = texts.get(name, {})
    language = next((c for c in (lang, "en", "de") if section.get(c)), "de")
    blocks = []
    for chunk in section.get(language, "").strip().split("\n\n"):
        for i, line in enumerate(chunk.strip().splitlines()):
            if line.startswith("## "):
                blocks.append(Block(True, line[3:].strip()))
            elif line.strip():
                if i and blocks and not blocks[-1].heading:
                    blocks[-1] = Block(False, f"{blocks[-1].text}\n{line.strip()}")
                else:
                    blocks.append(Block(False, line.strip()))
    return LegalText(language, blocks, section.get("contact", ""))


class LegalPages(Controller):
    include_in_schema = False

    async def _show(self, request: Request, settings, name: str) -> Template:
        text = legal_text(site_texts(settings.site_texts), name, page_language(request))
        return page(request, "booking/legal.html", name=name, text=text)

    @get("/imprint", summary="Imprint")
    async def imprint(self, request: Request, settings: SettingsDep) -> Template:
        return await self._show(request, settings, "imprint")

    @get("/privacy", summary="Privacy")
    async def privacy(self, request: Request, settings: SettingsDep) -> Template:
        return await self._show(request, settings, "privacy")

    @get("/accessibility", summary="Accessibility statement")
    async def accessibility(self, request: Request, settings: SettingsDep) -> Template:
        return await self._show(request, settings, "accessibility")
