"""The booking site (Terminvergabe): `/` authority → `/services` with quantities → `/location`
→ `/day` (two weeks) → `/time` → `/details` → POST `/book` → `/a/{token}/booked`.

Every step is a GET URL carrying what was chosen before it (aufruf.booking.steps), so the back
button works, links can be shared and nothing needs JavaScript. Availability, booking and the
directory come from the booking and offices services. The booking form needs no CSRF token:
it acts on nothing of the browser's (no session, no cookie but the language); what it could
be made to book, anyone could book directly.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from litestar import Controller, Request, Response, get, post
from litestar.response import Redirect, Template

from aufruf.booking import service, views
from aufruf.booking.proof import ProofOfWork, accept_proof
from aufruf.booking.steps import STEP_COUNT, Choice, choice_from, step_number
from aufruf.db import Database, pick_text
from aufruf.deps import CacheDep, ClockDep, DatabaseDep, LimiterDep, SettingsDep
from aufruf.errors import InvalidInput
from aufruf.offices import service as offices
from aufruf.ratelimit import client_address
from aufruf.web.i18n import (
    LANGUAGE_COOKIE,
    PUBLIC_LANGUAGES,
    gettext,
    language_cookies,
    language_of,
    ngettext,
)
from aufruf.web.templating import public_page_context

NO_STORE = {"Cache-Control": "no-store"}


def page_language(request: Request, default: str | None = None) -> str:
    """?lang=, the remembered choice, then `default` (e.g. the language an appointment was
    booked in, for the link in its e-mail), then the browser's wishes."""
    if default in PUBLIC_LANGUAGES and not (
        request.query_params.get("lang") or request.cookies.get(LANGUAGE_COOKIE)
    ):
        return default
    return language_of(request, PUBLIC_LANGUAGES)


def step_names(lang: str) -> dict[str, str]:
    return {
        "authority": gettext(lang, "Authority"),
        "services": gettext(lang, "Concerns"),
        "location": gettext(lang, "Location"),
        "day": gettext(lang, "Day"),
        "time": gettext(lang, "Time"),
        "details": gettext(lang, "Your details"),
    }


def chosen_language_cookies(request: Request) -> list:
    """The cookie remembering a language picked with the switch (a GET link); forms carry
    ?lang= only to answer in the page's language, which sets no cookie."""
    return language_cookies(request) if request.method == "GET" else []


def page(
    request: Request,
    template: str,
    *,
    step: str | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    language: str | None = None,
    **values: Any,
) -> Template:
    """A citizen's page in the request's language (or `language`, see page_language); a step
    page knows its number and name."""
    lang = page_language(request, language)
    if step is not None:
        values |= {
            "step": step,
            "step_number": step_number(step),
            "step_count": STEP_COUNT,
            "step_name": step_names(lang)[step],
        }
    context = public_page_context(request, **values)
    if context["lang"] != lang:
        context["lang"], context["dir"] = lang, PUBLIC_LANGUAGES[lang].direction
        for item in context["languages"]:
            item["current"] = item["code"] == lang
    return Template(
        template,
        context=context,
        status_code=status_code,
        cookies=chosen_language_cookies(request),
        headers={**NO_STORE, **(headers or {})},
    )


def redirect(request: Request, url: str) -> Redirect:
    return Redirect(url, status_code=303, cookies=chosen_language_cookies(request))


def query_choice(request: Request) -> Choice:
    params = request.query_params
    return choice_from({k: params.get(k) for k in params}, params.getall("service", []))


async def eligible_locations(db: Database, choice: Choice, lang: str) -> list[offices.LocationInfo]:
    """Locations of the chosen authority that offer every chosen service."""
    async with db.read() as session:
        found = await offices.list_locations(session, lang)
    wanted = set(choice.services)
    return [
        loc for loc in found if loc.authority == choice.authority and wanted <= set(loc.services)
    ]


def person_errors(lang: str, name: str, email: str, phone: str, consent: bool) -> dict[str, str]:
    """What is wrong with the entered details, by field, in the page's language."""
    errors: dict[str, str] = {}
    if not name:
        errors["name"] = gettext(lang, "Please enter your name.")
    elif len(name) > service.NAME_MAX:
        errors["name"] = gettext(lang, "The name is too long.")
    if not email:
        errors["email"] = gettext(lang, "Please enter your e-mail address.")
    elif len(email) > 254 or not service.EMAIL_RE.match(email):
        errors["email"] = gettext(
            lang, "This is not a valid e-mail address. Example: name@example.org"
        )
    if phone and not service.PHONE_RE.match(phone):
        errors["phone"] = gettext(
            lang, "This is not a valid phone number. Use digits, spaces and a leading +."
        )
    if not consent:
        errors["consent"] = gettext(
            lang, "Please agree that your details are used for this appointment."
        )
    return errors


class BookingPages(Controller):
    include_in_schema = False

    @get("/", summary="Booking, step 1: the authority")
    async def authorities(self, request: Request, db: DatabaseDep) -> Response:
        lang = page_language(request)
        async with db.read() as session:
            found = await offices.list_authorities(session, lang)
        if len(found) == 1:
            return redirect(request, Choice(authority=found[0].id).url("services"))
        return page(request, "booking/authority.html", step="authority", authorities=found)

    @get("/services", summary="Booking, step 2: concerns and how many")
    async def services(self, request: Request, db: DatabaseDep) -> Response:
        lang = page_language(request)
        choice = query_choice(request)
        async with db.read() as session:
            authorities = {a.id: a for a in await offices.list_authorities(session, lang)}
            offered = [
                s
                for s in await offices.list_services(session, lang)
                if s.authority == choice.authority
            ]
        if choice.authority not in authorities or not offered:
            return redirect(request, "/")
        quantities = choice.quantities
        errors: dict[str, str] = {}
        if request.query_params.get("choose"):
            quantities = {}
            for item in offered:
                raw = request.query_params.get(f"qty-{item.id}") or "0"
                n = int(raw) if raw.isdigit() else -1
                if not 0 <= n <= item.max_quantity:
                    errors[f"qty-{item.id}"] = gettext(
                        lang, "Choose a number from 0 to %(max)s."
                    ) % {"max": item.max_quantity}
                elif n:
                    quantities[item.id] = n
            if not errors and not quantities:
                errors["services"] = gettext(lang, "Please choose at least one concern.")
            if not errors:
                units = tuple(sorted(s for s, n in quantities.items() for _ in range(n)))
                return redirect(request, choice.with_(services=units).url("location"))
        return page(
            request,
            "booking/services.html",
            step="services",
            status_code=400 if errors else 200,
            choice=choice,
            authority=authorities[choice.authority],
            services=offered,
            quantities=quantities,
            errors=errors,
        )

    @get("/location", summary="Booking, step 3: the location")
    async def location(
        self, request: Request, db: DatabaseDep, clock: ClockDep, cache: CacheDep
    ) -> Response:
        lang = page_language(request)
        choice = query_choice(request)
        if not choice.services:
            return redirect(request, choice.url("services"))
        locations = await eligible_locations(db, choice, lang)
        if len(locations) == 1:
            return redirect(request, choice.with_(location=locations[0].id).url("day"))
        rows = []
        for loc in locations:
            try:
                found = await service.availability(
                    db, clock.now(), loc.id, choice.services, cache=cache
                )
            except InvalidInput:
                return redirect(request, choice.url("services"))
            rows.append(
                {
                    "location": loc,
                    "next_free": views.next_free_day(found.days, lang),
                    "url": choice.with_(location=loc.id).url("day"),
                }
            )
        return page(
            request,
            "booking/location.html",
            step="location",
            choice=choice,
            rows=rows,
            back=choice.url("services"),
        )

    @get("/day", summary="Booking, step 4: the day")
    async def day(
        self, request: Request, db: DatabaseDep, clock: ClockDep, cache: CacheDep
    ) -> Response:
        lang = page_language(request)
        choice = query_choice(request)
        if not choice.location:
            return redirect(request, choice.url("location"))
        try:
            found = await service.availability(
                db, clock.now(), choice.location, choice.services, cache=cache
            )
        except InvalidInput:
            return redirect(request, choice.with_(location="").url("location"))
        first, last = found.days[0].date, found.days[-1].date
        async with db.read() as session:
            rules = await offices.location_rules(session, choice.location, first, last)
            place = await offices.get_location(session, choice.location)
        weeks = views.calendar(found.days, rules, lang, lambda d: choice.with_(day=d).url("time"))
        several = len(await eligible_locations(db, choice, lang)) > 1
        return page(
            request,
            "booking/day.html",
            step="day",
            choice=choice,
            weeks=weeks,
            place=pick_text(place.name, lang),
            any_free=any(d.starts for d in found.days),
            back=choice.url("location") if several else choice.url("services"),
        )

    @get("/time", summary="Booking, step 5: the time")
    async def time(
        self, request: Request, db: DatabaseDep, clock: ClockDep, cache: CacheDep
    ) -> Response:
        lang = page_language(request)
        choice = query_choice(request)
        if choice.day is None:
            return redirect(request, choice.url("day"))
        try:
            found = await service.availability(
                db, clock.now(), choice.location, choice.services, choice.day, choice.day, cache
            )
        except InvalidInput:
            return redirect(request, choice.with_(location="").url("location"))
        zone = ZoneInfo(await _timezone(db, choice.location))
        day = next((d for d in found.days if d.date == choice.day), None)
        times = views.free_times(day, zone, lang) if day else []
        return page(
            request,
            "booking/time.html",
            step="time",
            choice=choice,
            day_text=views.day_text(choice.day, lang),
            times=[
                {"text": t.text, "url": choice.with_(start=t.start.astimezone(zone)).url("details")}
                for t in times
            ],
            back=choice.url("day"),
        )

    @get("/details", summary="Booking, step 6: name and e-mail address")
    async def details(
        self, request: Request, db: DatabaseDep, clock: ClockDep, settings: SettingsDep
    ) -> Response:
        choice = query_choice(request)
        if choice.start is None or not choice.location or not choice.services:
            return redirect(request, choice.url("time"))
        return await _details_page(request, db, settings, choice, {}, {}, clock=clock)

    @post("/book", summary="Book the appointment")
    async def book(
        self,
        request: Request,
        db: DatabaseDep,
        clock: ClockDep,
        cache: CacheDep,
        settings: SettingsDep,
        limiter: LimiterDep,
    ) -> Response:
        lang = page_language(request)
        form = await request.form()
        single = {k: str(form.get(k) or "") for k in form}
        choice = choice_from(single, [str(s) for s in form.getall("service", [])])
        entered = {
            "name": " ".join(single.get("name", "").split())[:300],
            "email": single.get("email", "").strip()[:300],
            "phone": single.get("phone", "").strip()[:60],
            "consent": bool(single.get("consent")),
        }
        if choice.start is None or not choice.location or not choice.services:
            return redirect(request, choice.url("time"))
        errors = person_errors(lang, **entered)
        if errors:
            return await _details_page(request, db, settings, choice, entered, errors, 400, clock)
        now = clock.now()
        client = client_address(
            request.client.host if request.client else None,
            request.headers.get("x-forwarded-for"),
            settings.trusted_proxies,
        )
        retry_after = await limiter.hit(f"book:{client}", settings.booking_rate_limit, now)
        if retry_after:
            minutes = max(1, -(-retry_after // 60))
            return page(
                request,
                "booking/too_many.html",
                status_code=429,
                headers={"Retry-After": str(retry_after)},
                minutes=minutes,
                back=choice.url("details"),
            )
        pow = ProofOfWork.from_settings(settings)
        # without a valid proof (no JavaScript, a replay) the booking waits for the e-mail link
        unproven = pow.asked and not await accept_proof(db, pow, single.get("altcha"), now)
        booking = service.BookingRequest(
            location=choice.location,
            services=list(choice.services),
            start=choice.start,
            name=entered["name"],
            email=entered["email"],
            phone=entered["phone"] or None,
            language=lang,
            pending=unproven,
        )
        try:
            booked = await service.book_at_once(db, settings, now, booking, cache)
        except service.LimitReached:
            limit = settings.max_active_appointments_per_email
            errors["email"] = ngettext(
                lang,
                "This e-mail address already has %(num)s upcoming appointment. "
                "Please cancel it before booking another.",
                "This e-mail address already has %(num)s upcoming appointments. "
                "Please cancel one before booking another.",
                limit,
            ) % {"num": limit}
            return await _details_page(request, db, settings, choice, entered, errors, 409, clock)
        except InvalidInput as exc:
            field = (exc.extra or [{}])[0].get("key", "")
            if field in ("name", "email", "phone"):
                errors[field] = exc.detail
                return await _details_page(
                    request, db, settings, choice, entered, errors, 400, clock
                )
            return await _taken_page(request, db, clock, cache, settings, choice, entered)
        except service.SlotTaken:
            return await _taken_page(request, db, clock, cache, settings, choice, entered)
        return redirect(request, f"/a/{booked.token}/booked")


async def _timezone(db: Database, location_id: str) -> str:
    async with db.read() as session:
        location = await offices.get_location(session, location_id)
    return location.timezone if location else "Europe/Berlin"


async def _details_page(
    request: Request,
    db,
    settings,
    choice: Choice,
    entered: dict[str, Any],
    errors: dict[str, str],
    status_code: int = 200,
    clock=None,
    alternatives: list[views.FreeTime] | None = None,
    taken: bool = False,
) -> Response:
    lang = page_language(request)
    async with db.read() as session:
        location = await offices.get_location(session, choice.location)
        names = {s.id: s.name for s in await offices.list_services(session, lang)}
    if location is None:
        return redirect(request, choice.with_(location="").url("location"))
    zone = ZoneInfo(location.timezone)
    start = choice.start.astimezone(zone)
    pow = ProofOfWork.from_settings(settings)
    return page(
        request,
        "booking/details.html",
        step="details",
        status_code=status_code,
        choice=choice,
        hidden=[(k, v) for k, v in choice.params("details") if k != "start"],
        start_iso=start.isoformat(),
        date_text=views.day_text(start.date(), lang),
        time_text=views.time_text(start, zone, lang),
        place=pick_text(location.name, lang),
        address=location.address,
        services=[
            (f"{q} × " if q > 1 else "") + names.get(s, s)
            for s, q in sorted(choice.quantities.items())
        ],
        entered=entered,
        errors=errors,
        alternatives=alternatives,
        taken=taken,
        proof_challenge=pow.challenge_json(clock.now()) if pow.asked else "",
        back=choice.url("time"),
    )


async def _taken_page(
    request: Request, db, clock, cache, settings, choice: Choice, entered: dict[str, Any]
) -> Response:
    """The time was taken meanwhile: the nearest free times, the entered details kept."""
    lang = page_language(request)
    found = await service.availability(
        db, clock.now(), choice.location, choice.services, cache=cache
    )
    zone = ZoneInfo(await _timezone(db, choice.location))
    nearest = views.nearest_times(found.days, choice.start, zone, lang)
    message = gettext(
        lang, "Sorry, someone else has just booked this time. Please choose another one."
    )
    return await _details_page(
        request,
        db,
        settings,
        choice,
        entered,
        {"start": message},
        409,
        clock,
        alternatives=nearest,
        taken=True,
    )
