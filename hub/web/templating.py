"""The dashboard's templates, their filters, and the headers every page is sent with."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from hub.auth import STAFF_ROLES, Principal
from hub.http.errors import as_http
from hub.services.errors import ServiceError
from hub.services.fleet import UNVERIFIED_SECONDS
from hub.services.scope import Scope
from hub.web import i18n
from hub.web.session import PREFIX, employer_pages, home_of, member_pages

#: Everything from the hub itself: spaces may be cut off from the internet, and no other
#: site's script may run on pages that name members.
CSP = (
    "default-src 'self'; img-src 'self'; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)


def since(at: str | None) -> str:
    """'12 s ago', '5 min ago', '3 h ago' or '2 days ago' for an ISO time; '' without one."""
    if at is None:
        return ""
    seconds = (datetime.now(UTC) - datetime.fromisoformat(at)).total_seconds()
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size * (2 if unit == "days" else 1):
            return f"{int(seconds // size)} {unit} ago"
    return f"{max(int(seconds), 0)} s ago"


def interval(live: dict[str, Any]) -> str:
    """A headcount's 90 % interval, to stand beside it: '(10–14)'; '' without one (a door from
    before the interval). static/live.js writes the same when the count changes."""
    if live.get("low") is None or live.get("high") is None:
        return ""
    return f"({live['low']}–{live['high']})"


def free_places(live: dict[str, Any]) -> str:
    """The places free by the interval: '6–10 places free', '1 place free'; '' without a
    capacity or an interval. The lower end is what may be promised (hub.services.occupancy).
    static/live.js writes the same when the count changes."""
    least, most = live.get("free_at_least"), live.get("free_at_most")
    if least is None or most is None:
        return ""
    if least == most:
        return "1 place free" if least == 1 else f"{least} places free"
    return f"{least}–{most} places free"


templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
# {% trans %} blocks compile against these; each page binds its visitor's language (i18n).
templates.env.add_extension("jinja2.ext.i18n")
templates.env.install_null_translations(newstyle=True)  # type: ignore[attr-defined]
templates.env.filters["since"] = since
templates.env.filters["interval"] = interval
templates.env.filters["free_places"] = free_places
#: For the words about unverified doors (hub.list_acks).
templates.env.globals["unverified_seconds"] = UNVERIFIED_SECONDS


def page(request: Request, name: str, who: Principal | None, **context: Any) -> HTMLResponse:
    """The template ``name`` for ``who`` (None: nobody signed in), with the page headers."""
    scope = Scope(who) if who is not None else None
    shown: dict[str, Any] = {
        "who": who,
        "people": scope is not None and scope.sees_people,
        #: Whether the page may offer to enrol and revoke devices.
        "installs": scope is not None and scope.installs_devices,
        #: Which pages the bar offers: staff the dashboard's, members and employers theirs.
        "staff": scope is not None and who is not None and who.role in STAFF_ROLES,
        "member_pages": who is not None and member_pages(who),
        "employer_pages": who is not None and employer_pages(who),
        "home": home_of(who) if who is not None else f"{PREFIX}/",
    }
    lang = i18n.choose(request)
    shown["switch"] = {code: _in_language(request, code) for code in i18n.LANGUAGES}
    response = templates.TemplateResponse(request, name, {**i18n.context(lang), **shown, **context})
    i18n.keep_choice(request, response, lang)
    response.headers["Content-Language"] = lang
    response.headers["Content-Security-Policy"] = CSP
    # Pages name members: nothing of them may stay in the browser's cache after sign-out.
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def form_page(
    request: Request,
    name: str,
    who: Principal | None,
    error: str | ServiceError | None = None,
    status_code: int | None = None,
    **context: Any,
) -> HTMLResponse:
    """The page ``name`` with its form, and, when it was refused, ``error`` beside it (the
    template's ``error``): a service's refusal in the service's words (in the visitor's
    language, as ``i18n.refusal`` says them), or the page's own.

    A refused form answers with the refusal's status, so that a script or a test tells it
    from a page that worked: a service's error with the status the API gives it (409, 422,
    404 ...), the page's own words with 422, unless ``status_code`` says otherwise (which
    also serves a page that cannot take its form at all, without an error, as 503)."""
    if status_code is None and error is not None:
        status_code = as_http(error).status_code if isinstance(error, ServiceError) else 422
    shown = i18n.refusal(request, error) if isinstance(error, ServiceError) else error
    response = page(request, name, who, error=shown, **context)
    if status_code is not None:
        response.status_code = status_code
    return response


def _in_language(request: Request, lang: str) -> str:
    """This page's address in ``lang``: the same path and query (the month shown stays)."""
    query = {key: value for key, value in request.query_params.items() if key != "lang"}
    return f"{request.url.path}?{urlencode({**query, 'lang': lang})}"
