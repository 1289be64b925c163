"""Mounting the dashboard on the hub's application: pages, assets, the live feed."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine
from starlette.exceptions import HTTPException

from hub.http.errors import Refused
from hub.http.inputs import UnstorableInput
from hub.web import (
    booking_pages,
    device_pages,
    employer_pages,
    i18n,
    invitation_pages,
    member_pages,
    pages,
    rollout_pages,
    site_pages,
    space_pages,
    staff_booking_pages,
    statement_pages,
)
from hub.web.charts import ChartCache
from hub.web.live import LiveFeed
from hub.web.session import PREFIX, SignInRequired, to_sign_in
from hub.web.templating import page


def add_dashboard(app: FastAPI, engine: Engine) -> LiveFeed:
    """The dashboard under ``/ui``; its assets from the hub itself, never from a CDN. Returns
    its live feed, for the application to close when it stops."""
    app.state.live = live = LiveFeed(engine)
    app.state.charts = ChartCache()
    app.add_exception_handler(SignInRequired, to_sign_in)
    app.add_exception_handler(HTTPException, _error_page)
    app.add_exception_handler(RequestValidationError, _error_page)
    app.mount(
        f"{PREFIX}/static",
        StaticFiles(directory=Path(__file__).parent / "static"),
        name="ui-static",
    )
    app.include_router(pages.router)
    app.include_router(site_pages.router)
    app.include_router(device_pages.router)
    app.include_router(rollout_pages.router)
    app.include_router(invitation_pages.router)
    app.include_router(member_pages.router)
    app.include_router(space_pages.router)
    app.include_router(booking_pages.router)
    app.include_router(employer_pages.router)
    app.include_router(statement_pages.router)
    app.include_router(staff_booking_pages.router)

    @app.get(PREFIX, include_in_schema=False)
    def dashboard_root() -> RedirectResponse:
        return RedirectResponse(f"{PREFIX}/", status_code=308)

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> RedirectResponse:
        """Browsers ask for it whatever a page links (tabs, bookmarks, the API's own pages):
        the hub's icon, not a 404 in every log."""
        return RedirectResponse(f"{PREFIX}/static/favicon.svg", status_code=308)

    return live


def N_(message: str) -> str:
    """Marks a text for the catalogues (``make messages``); the page translates it."""
    return message


#: Error pages in words a volunteer understands (translated by error.html); the API keeps
#: FastAPI's JSON errors.
TITLES = {
    400: N_("That address is not right"),
    403: N_("Not allowed"),
    404: N_("Not found"),
    409: N_("That is taken already"),
    410: N_("No longer valid"),
    422: N_("That cannot be taken"),
    503: N_("Not possible right now"),
}


async def _error_page(request: Request, exc: Exception) -> Response:
    """A page for errors under ``/ui`` (pictures and downloads excepted), JSON elsewhere."""
    path = request.url.path
    as_page = path.startswith(f"{PREFIX}/") and not path.endswith((".svg", ".csv", ".ics"))
    if isinstance(exc, RequestValidationError):
        if not as_page:
            return await request_validation_exception_handler(request, exc)
        # Text the hub cannot store is refused as the API refuses it; a malformed address
        # (a month that is not one) is the page's own 400.
        code = 422 if isinstance(exc, UnstorableInput) else 400
        detail, headers = "; ".join(e["msg"] for e in exc.errors()), None
    elif isinstance(exc, HTTPException):
        if not as_page:
            return await http_exception_handler(request, exc)
        code, detail, headers = exc.status_code, str(exc.detail), exc.headers
        if isinstance(exc, Refused):  # a service's words: in the page's language
            detail = i18n.refusal(request, exc.error)
    else:  # registered for these two only
        raise exc
    response = page(
        request,
        "error.html",
        None,
        title=TITLES.get(code, N_("Something went wrong")),
        detail=detail,
    )
    response.status_code = code
    if headers:
        response.headers.update(headers)
    return response
