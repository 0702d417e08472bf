"""The wall display page: `/display/{L}` (public and read-only; it shows what hangs on the wall).

Server-rendered in the page's language with the office's name, its services and counters; the
live part is `static/display.js`, which follows `/ws/locations/{L}/display`. A display token
given once as `?token=` is kept by the script (localStorage) and cut from the address; it never
appears in the page's HTML.

Query parameters: `layout=counters` (a column per counter instead of the newest call large),
`speak=de,en` (the languages of the spoken call, in order; default the page's language),
`lang=` (the page's language, as on every page).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from litestar import Controller, Request, get
from litestar.params import FromPath, QueryParameter
from litestar.response import Template
from sqlalchemy import select

from aufruf.deps import DatabaseDep
from aufruf.display.service import LAST_CALLS, views_of
from aufruf.offices import service as offices
from aufruf.offices.model import Location
from aufruf.web.i18n import PUBLIC_LANGUAGES, gettext, language_cookies, language_of
from aufruf.web.templating import public_page_context

# the query parameters a display's address keeps in the language switch (never `token`)
KEPT_PARAMETERS = ("layout", "speak")


def call_template(lang: str, own: Mapping[str, str] | None = None) -> str:
    """The spoken call in `lang`: the location's `own` text for it (`call_text` in its
    `[locations.queue]`), else aufruf's; `%(number)s` and `%(counter)s` are filled in by the
    page."""
    return (own or {}).get(lang) or gettext(lang, "Number %(number)s, please go to %(counter)s")


def spoken_languages(speak: str | None, page_language: str) -> list[str]:
    """The languages of the spoken call: those named in `speak` that are offered, in order and
    once each; the page's language when none is named."""
    chosen: list[str] = []
    for code in (speak or "").split(","):
        code = code.strip().lower()
        if code in PUBLIC_LANGUAGES and code not in chosen:
            chosen.append(code)
    return chosen or [page_language]


def display_strings(lang: str) -> dict[str, str]:
    """The texts display.js shows, in the page's language."""
    return {
        "offline": gettext(lang, "No connection to the server. Trying again…"),
        "sound_off": gettext(lang, "Sound off – tap to turn it on"),
        "no_voice": gettext(lang, "Sound off: no voice for the spoken call is installed"),
        "refused": gettext(
            lang,
            "This display's token is no longer valid. It still shows the calls, "
            "but staff do not see it online.",
        ),
        "gone": gettext(lang, "This location does not exist any more."),
    }


def switch_without_secrets(request: Request, context: dict[str, Any]) -> None:
    """Rebuild the language switch from the kept parameters only (the token stays out)."""
    query = {k: v for k, v in request.query_params.items() if k in KEPT_PARAMETERS}
    for entry in context["languages"]:
        entry["url"] = f"{request.url.path}?{urlencode({**query, 'lang': entry['code']})}"


class WallDisplayPage(Controller):
    include_in_schema = False

    @get("/display/{location:str}", summary="The wall display of a location")
    async def display(
        self,
        request: Request,
        location: FromPath[str],
        db: DatabaseDep,
        layout: Annotated[
            Literal["calls", "counters"],
            QueryParameter(description="calls: the newest call large; counters: a column each"),
        ] = "calls",
        speak: Annotated[
            str | None, QueryParameter(max_length=40, description="e.g. de,en")
        ] = None,
    ) -> Template:
        lang = language_of(request, PUBLIC_LANGUAGES)
        async with db.read() as session:
            found = next(
                (x for x in await offices.list_locations(session, lang) if x.id == location),
                None,
            )
            names = {s.id: s.name for s in await offices.list_services(session, lang)}
            settings = await session.scalar(select(Location.queue).where(Location.id == location))
        if found is None:
            context = public_page_context(request, location=location)
            switch_without_secrets(request, context)
            return Template("display/wall_missing.html", context=context, status_code=404)
        view = await views_of(request.app).current(location)
        counters = [{"id": c["id"], "name": c["name"]} for c in view.counters.values()]
        services = [{"id": s, "name": names.get(s, s)} for s in found.services]
        config = {
            "location": found.id,
            "timezone": found.timezone,
            "lang": lang,
            "layout": layout,
            "keep": LAST_CALLS,
            "speak": [
                {"lang": code, "template": call_template(code, (settings or {}).get("call_text"))}
                for code in spoken_languages(speak, lang)
            ],
            "strings": display_strings(lang),
        }
        context = public_page_context(
            request,
            office=found,
            counters=counters,
            services=services,
            layout=layout,
            recent=range(LAST_CALLS - 1),
            config=config,
        )
        switch_without_secrets(request, context)
        return Template(
            "display/wall.html",
            context=context,
            cookies=language_cookies(request),
            headers={"Referrer-Policy": "no-referrer"},
        )
