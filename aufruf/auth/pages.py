"""The staff login page and logout: plain HTML forms, no JavaScript needed.

The login form carries its own CSRF token, bound to a short-lived cookie set with the form
(there is no session yet); after sign-in, forms carry the session's token.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.response import Redirect, Template

from aufruf.auth import service
from aufruf.auth.guards import CSRF_FIELD, CSRF_HEADER, SESSION_COOKIE, came_over_https, client_of
from aufruf.auth.logic import csrf_matches, csrf_token, safe_next
from aufruf.deps import ClockDep, DatabaseDep, SettingsDep
from aufruf.settings import Settings
from aufruf.web.i18n import gettext, language_cookies, language_of, ngettext
from aufruf.web.templating import page_context

LOGIN_COOKIE = "aufruf_login"
AFTER_LOGIN = "/desk"  # ?next= takes precedence


def _login_page(
    request: Request,
    settings: Settings,
    *,
    status_code: int = 200,
    username: str = "",
    next_path: str = "",
    error_field: str | None = None,
    message: str | None = None,
    notice: str | None = None,
    actor: Any = None,
    headers: dict[str, str] | None = None,
) -> Template:
    """The form, with a fresh login CSRF token bound to a fresh cookie."""
    seed = service.new_secret()
    https = came_over_https(request, settings)
    cookies = [
        *language_cookies(request),
        Cookie(
            key=LOGIN_COOKIE,
            value=seed,
            max_age=3600,
            httponly=True,
            samesite="lax",
            secure=https,
            path="/login",
        ),
    ]
    context = page_context(
        request,
        login_csrf=csrf_token(settings.secret_key, "login:" + seed),
        username=username,
        next=next_path,
        error_field=error_field,
        message=message,
        notice=notice,
        actor=actor,
    )
    return Template(
        "auth/login.html",
        context=context,
        status_code=status_code,
        cookies=cookies,
        headers=headers,
    )


class LoginPages(Controller):
    include_in_schema = False

    @get("/login", summary="The staff login page")
    async def form(
        self, request: Request, db: DatabaseDep, clock: ClockDep, settings: SettingsDep
    ) -> Template:
        next_path = safe_next(request.query_params.get("next"), "")
        cookie = request.cookies.get(SESSION_COOKIE)
        actor = await service.session_actor(db, clock.now(), cookie) if cookie else None
        return _login_page(request, settings, next_path=next_path, actor=actor)

    @post("/login", summary="Sign in")
    async def sign_in(
        self, request: Request, db: DatabaseDep, clock: ClockDep, settings: SettingsDep
    ) -> Response:
        form = await request.form()
        lang = language_of(request)
        username = str(form.get("username") or "").strip()
        password = str(form.get("password") or "")
        next_path = safe_next(str(form.get("next") or ""), "")
        page: dict[str, Any] = {"username": username[:64], "next_path": next_path}
        seed = request.cookies.get(LOGIN_COOKIE, "")
        if not csrf_matches(settings.secret_key, "login:" + seed, str(form.get(CSRF_FIELD) or "")):
            return _login_page(
                request,
                settings,
                status_code=403,
                notice=gettext(lang, "The form had expired. Please sign in again."),
                **page,
            )
        if not username:
            return _login_page(
                request,
                settings,
                status_code=400,
                error_field="username",
                message=gettext(lang, "Enter your user name."),
                **page,
            )
        if not password:
            return _login_page(
                request,
                settings,
                status_code=400,
                error_field="password",
                message=gettext(lang, "Enter your password."),
                **page,
            )
        now = clock.now()
        result = await service.sign_in(db, now, username, password, client_of(request, settings))
        if result.wait_seconds:
            minutes = max(1, -(-result.wait_seconds // 60))
            return _login_page(
                request,
                settings,
                status_code=429,
                error_field="password",
                message=ngettext(
                    lang,
                    "Too many failed attempts. Please wait %(num)s minute.",
                    "Too many failed attempts. Please wait %(num)s minutes.",
                    minutes,
                )
                % {"num": minutes},
                headers={"Retry-After": str(result.wait_seconds)},
                **page,
            )
        if result.cookie is None:
            return _login_page(
                request,
                settings,
                status_code=401,
                error_field="password",
                message=gettext(lang, "The user name or the password is wrong."),
                **page,
            )
        if old := request.cookies.get(SESSION_COOKIE):
            await service.close_session(db, old)
        https = came_over_https(request, settings)
        return Redirect(
            next_path or AFTER_LOGIN,
            status_code=303,
            cookies=[
                Cookie(
                    key=SESSION_COOKIE,
                    value=result.cookie,
                    max_age=int(service.SESSION_MAX.total_seconds()),
                    httponly=True,
                    samesite="lax",
                    secure=https,
                    path="/",
                ),
                Cookie(key=LOGIN_COOKIE, value="", max_age=0, path="/login"),
            ],
        )

    @post("/logout", summary="Sign out")
    async def sign_out(
        self, request: Request, db: DatabaseDep, clock: ClockDep, settings: SettingsDep
    ) -> Response:
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            form = await request.form()
            given = request.headers.get(CSRF_HEADER) or str(form.get(CSRF_FIELD) or "")
            if not csrf_matches(settings.secret_key, cookie, given):
                return _login_page(
                    request,
                    settings,
                    status_code=403,
                    notice=gettext(
                        language_of(request),
                        "Signing out needs the button on an aufruf page. Please try again.",
                    ),
                    actor=await service.session_actor(db, clock.now(), cookie),
                )
            await service.close_session(db, cookie)
        return Redirect(
            "/login",
            status_code=303,
            cookies=[Cookie(key=SESSION_COOKIE, value="", max_age=0, path="/", httponly=True)],
        )
