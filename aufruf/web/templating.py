"""Templates and static files shared by every page.

Templates are looked up in `aufruf/web/templates` (the base layout) and then in each domain's
`aufruf/<domain>/templates`; a domain keeps its own in a folder of its name
(`auth/login.html`), so names never clash. Every page extends `base.html` and passes
`page_context(request)`: its language, direction and the language switch.

Template globals: `_()`/`gettext()` (jinja2 i18n, in the page's language), `url_for`,
`url_for('static', file_path='/aufruf.css')`, and `csrf_token()`, the token of the signed-in
browser's session for forms (`<input type="hidden" name="_csrf_token" ...>`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from litestar import Router
from litestar.connection import ASGIConnection
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from aufruf.web.i18n import PUBLIC_LANGUAGES, install_i18n, language_context

WEB = Path(__file__).resolve().parent
PACKAGE = WEB.parent


def template_directories() -> list[Path]:
    shared = WEB / "templates"
    return [shared, *sorted(p for p in PACKAGE.glob("*/templates") if p != shared)]


def _csrf_token(context: Mapping[str, Any]) -> str:
    from aufruf.auth.guards import session_csrf_token

    return session_csrf_token(context["request"])


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    env = Environment(
        loader=FileSystemLoader(template_directories()),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    install_i18n(env)
    engine = JinjaTemplateEngine.from_environment(env)
    engine.register_template_callable("csrf_token", _csrf_token)
    return TemplateConfig(instance=engine)


def static_files_router() -> Router:
    return create_static_files_router(path="/static", directories=[WEB / "static"], name="static")


def page_context(connection: ASGIConnection, **values: Any) -> dict[str, Any]:
    """The context of a staff page: what base.html needs, plus `values`."""
    return {**language_context(connection), **values}


def public_page_context(connection: ASGIConnection, **values: Any) -> dict[str, Any]:
    """The context of a page citizens see, offered in every public language."""
    return {**language_context(connection, PUBLIC_LANGUAGES), **values}
