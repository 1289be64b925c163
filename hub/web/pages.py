"""The dashboard's pages: sign-in, the overview (live) and the funders' report; a site's own
page is in site_pages.py, the fleet and its devices' enrolment and revocation in
device_pages.py.

Server-rendered with Jinja2; the only script is the hub's own ``live.js``, which keeps the
overview current over server-sent events. Every asset comes from the hub itself (see
templating.CSP).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from hub.auth import SESSION, STAFF_ROLES, AuthError, Principal, Role
from hub.http.deps import ClientAddress, Principals, SignIns, Store
from hub.http.responses import csv_download
from hub.services import companies, overview, reports, users
from hub.throttle import Throttled
from hub.web import i18n
from hub.web.deps import Live
from hub.web.session import (
    COOKIE,
    PREFIX,
    SameOrigin,
    Someone,
    Viewer,
    home_of,
    landing,
    safe_next,
    set_session,
)
from hub.web.templating import form_page, page

router = APIRouter(prefix=PREFIX, include_in_schema=False)
#: How long one live stream lasts before the browser reconnects (and signs in again).
STREAM_SECONDS = 60.0
#: How often a live stream checks that its viewer is still signed in, and what they may see.
RECHECK_SECONDS = 5.0
#: A waiting stream wakes at least this often (to notice a closed connection).
WAKE_SECONDS = 1.0
#: ASCII digits only: ``\d`` takes any script's, and the month goes into a file name's header.
MonthQuery = Annotated[str | None, Query(pattern=r"^[0-9]{4}-[0-9]{2}$")]
#: Companies the report page links statements of (a network has tens, not thousands).
MAX_COMPANIES_LISTED = 500


@router.get("/sign-in")
def sign_in_page(request: Request, next: str | None = None) -> HTMLResponse:
    return page(request, "sign_in.html", None, next=safe_next(next), error=None)


@router.post("/sign-in", dependencies=[SameOrigin])
def sign_in_form(
    request: Request,
    store: Store,
    throttle: SignIns,
    principals: Principals,
    client: ClientAddress,
    username: Annotated[str, Form(max_length=80)],
    password: Annotated[str, Form(max_length=200)],
    next: Annotated[str, Form(max_length=500)] = f"{PREFIX}/",
) -> Response:
    try:
        token = users.sign_in(store, throttle, username, password, client)
    except (AuthError, Throttled) as exc:
        refused = isinstance(exc, Throttled)
        error = (
            str(exc)
            if refused
            else i18n.translations(i18n.choose(request)).gettext("Wrong name or password.")
        )
        code = 429 if refused else status.HTTP_401_UNAUTHORIZED
        response = form_page(request, "sign_in.html", None, error, code, next=safe_next(next))
        if isinstance(exc, Throttled):
            response.headers["Retry-After"] = str(exc.seconds)
        return response
    if previous := request.cookies.get(COOKIE):
        users.sign_out(store, previous)  # signing in again ends the old session, not adds one
        principals.clear()
    # Each role lands on its own pages: a member who followed a link to a staff page lands
    # on their home, not on a 403.
    redirect = RedirectResponse(landing(principals.get(store, token), next), status_code=303)
    secure = request.url.scheme == "https"
    set_session(redirect, token, secure, int(SESSION.total_seconds()))
    return redirect


@router.post("/sign-out", dependencies=[SameOrigin])
def sign_out(request: Request, store: Store, principals: Principals, who: Someone) -> Response:
    users.sign_out(store, request.cookies[COOKIE])
    principals.clear()
    response = RedirectResponse(f"{PREFIX}/sign-in", status_code=303)
    response.delete_cookie(COOKIE, path=PREFIX, httponly=True, samesite="strict")
    return response


@router.get("/")
def overview_page(request: Request, who: Someone, live: Live) -> Response:
    """The network's overview, for staff; a member or company admin (the dashboard's root is
    where the bar's name leads) is sent to their own home."""
    if who.role not in STAFF_ROLES:
        return RedirectResponse(home_of(who), status_code=303)
    sites = overview.visible(live.current(), who)
    return page(request, "overview.html", who, sites=sites)


@router.get("/live")
async def live_stream(
    request: Request,
    who: Viewer,
    feed: Live,
    principals: Principals,
    store: Store,
    site: Annotated[str | None, Query(max_length=64, description="Only this site.")] = None,
) -> StreamingResponse:
    """Server-sent events: the visible sites as JSON whenever the picture changes. The viewer
    is looked up again every few seconds: a sign-out, a disabled user or a changed set of
    sites ends or narrows the stream within ``RECHECK_SECONDS``."""
    token = request.cookies[COOKIE]

    async def viewer_now() -> Principal | None:
        """Who the session's token belongs to now; None once it is signed out or disabled."""
        try:
            return await run_in_threadpool(principals.get, store, token)
        except AuthError:
            return None

    async def events() -> AsyncIterator[str]:
        nonlocal who
        yield "retry: 500\n\n"
        await run_in_threadpool(feed.current)
        ends, seen, beat = time.monotonic() + STREAM_SECONDS, -1, time.monotonic()
        checked = time.monotonic()
        with feed.listening():
            while (left := ends - time.monotonic()) > 0 and not feed.closed:
                await feed.changed(seen, min(left, WAKE_SECONDS))
                if await request.is_disconnected():
                    break
                if time.monotonic() - checked > RECHECK_SECONDS:
                    checked = time.monotonic()
                    if (now_who := await viewer_now()) is None:
                        break
                    if now_who != who:
                        who, seen = now_who, -1
                if feed.generation != seen:
                    seen, body = feed.payload(who, site, seen)
                    yield f"event: sites\ndata: {body}\n\n"
                    beat = time.monotonic()
                elif time.monotonic() - beat > 15:
                    yield ": still here\n\n"
                    beat = time.monotonic()

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)


@router.get("/reports")
def report_page(
    request: Request, store: Store, who: Viewer, month: MonthQuery = None
) -> HTMLResponse:
    month = month or reports.current_month(store, who)
    rows = reports.monthly_report(store, who, month)
    # Network admins invoice the companies: each one's statement of the month is a link away.
    employers = (
        companies.list_companies(store, limit=MAX_COMPANIES_LISTED)
        if who.role == Role.NETWORK_ADMIN
        else []
    )
    return page(
        request,
        "report.html",
        who,
        month=month,
        rows=rows,
        definitions=reports.DEFINITIONS,
        companies=employers,
    )


@router.get("/reports.csv")
def report_csv(store: Store, who: Viewer, month: MonthQuery = None) -> Response:
    month = month or reports.current_month(store, who)
    rows = reports.monthly_report(store, who, month)
    return csv_download(reports.as_csv(rows), f"hafen-network-{month}.csv")
