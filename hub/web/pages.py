"""The dashboard's pages: overview (live), site, fleet and the funders' report.

Server-rendered with Jinja2; the only script is the hub's own ``live.js``, which keeps the
overview current over server-sent events. Every asset comes from the hub itself: spaces may be
cut off from the internet, and the strict Content-Security-Policy below holds them to it.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, HTTPException, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy import Engine, select

from hub import db, reports
from hub.api.deps import Store, client_address, require_site
from hub.api.reports import csv_download, report_for
from hub.auth import SESSION, AuthError, Principal, Role, revoke_token
from hub.throttle import Throttled, throttled_sign_in
from hub.web import charts, live, site_view
from hub.web.fleet import fleet_rows
from hub.web.session import (
    COOKIE,
    PREFIX,
    SameOrigin,
    Viewer,
    safe_next,
    sees_people,
    set_session,
)

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters["since"] = live.since
router = APIRouter(prefix=PREFIX, include_in_schema=False)
#: How long one live stream lasts before the browser reconnects (and signs in again).
STREAM_SECONDS = 60.0
#: How often a live stream checks that its viewer is still signed in, and what they may see.
RECHECK_SECONDS = 5.0
#: A waiting stream wakes at least this often (to notice a closed connection).
WAKE_SECONDS = 1.0
CSP = (
    "default-src 'self'; img-src 'self'; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)


def page(request: Request, name: str, who, **context) -> HTMLResponse:
    response = templates.TemplateResponse(
        request, name, {"who": who, "people": who is not None and sees_people(who), **context}
    )
    response.headers["Content-Security-Policy"] = CSP
    # Pages name members: nothing of them may stay in the browser's cache after sign-out.
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


@router.get("/sign-in")
def sign_in_page(request: Request, next: str | None = None) -> HTMLResponse:
    return page(request, "sign_in.html", None, next=safe_next(next), error=None)


@router.post("/sign-in", dependencies=[SameOrigin])
def sign_in_form(
    request: Request,
    store: Store,
    username: Annotated[str, Form(max_length=80)],
    password: Annotated[str, Form(max_length=200)],
    next: Annotated[str, Form(max_length=500)] = f"{PREFIX}/",
) -> Response:
    throttle, client = request.app.state.sign_ins, client_address(request)
    try:
        token = throttled_sign_in(throttle, store, username, password, client, SESSION)
    except (AuthError, Throttled) as exc:
        refused = isinstance(exc, Throttled)
        error = str(exc) if refused else "Wrong name or password."
        response = page(request, "sign_in.html", None, next=safe_next(next), error=error)
        response.status_code = 429 if refused else status.HTTP_401_UNAUTHORIZED
        if refused:
            response.headers["Retry-After"] = str(exc.seconds)
        return response
    if previous := request.cookies.get(COOKIE):
        revoke_token(store, previous)  # signing in again ends the old session, not adds one
        request.app.state.principals.clear()
    response = RedirectResponse(safe_next(next), status_code=303)
    secure = request.url.scheme == "https"
    set_session(response, token, secure, int(SESSION.total_seconds()))
    return response


@router.post("/sign-out", dependencies=[SameOrigin])
def sign_out(request: Request, store: Store, who: Viewer) -> Response:
    revoke_token(store, request.cookies[COOKIE])
    request.app.state.principals.clear()
    response = RedirectResponse(f"{PREFIX}/sign-in", status_code=303)
    response.delete_cookie(COOKIE, path=PREFIX, httponly=True, samesite="strict")
    return response


@router.get("/")
def overview(request: Request, who: Viewer) -> HTMLResponse:
    sites = live.visible(request.app.state.live.current(), who)
    return page(request, "overview.html", who, sites=sites)


@router.get("/live")
async def live_stream(
    request: Request,
    who: Viewer,
    site: Annotated[str | None, Query(max_length=64, description="Only this site.")] = None,
) -> StreamingResponse:
    """Server-sent events: the visible sites as JSON whenever the picture changes. The viewer
    is looked up again every few seconds: a sign-out, a disabled user or a changed set of
    sites ends or narrows the stream within ``RECHECK_SECONDS``."""
    feed: live.LiveFeed = request.app.state.live
    token = request.cookies[COOKIE]

    async def events():
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
                    if (now_who := await _viewer_now(request, token)) is None:
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


async def _viewer_now(request: Request, token: str) -> Principal | None:
    """Who the session's token belongs to now; None once it is signed out or disabled."""
    try:
        principals, engine = request.app.state.principals, request.app.state.engine
        return await run_in_threadpool(principals.get, engine, token)
    except AuthError:
        return None


def _site(conn, who, site: str):
    require_site(who, site)
    row = site_view.site_row(conn, site)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no site {site!r}")
    return row


@router.get("/sites/{site}")
def site_page(request: Request, site: str, store: Store, who: Viewer) -> HTMLResponse:
    people = sees_people(who)
    with store.connect() as conn:
        row = _site(conn, who, site)
        context = {
            "site": row,
            "devices": site_view.devices(conn, site),
            "events": site_view.recent_events(conn, site, people),
            "co2": {k: (v, live.air_hint(v)) for k, v in site_view.co2_now(conn, site).items()},
            "now": _now(request, who, site),
            "stamp": int(time.time() // 60),
            "site_zone": ZoneInfo(row.timezone),
        }
    return page(request, "site.html", who, **context)


def _now(request: Request, who, site: str) -> dict | None:
    mine = [s for s in request.app.state.live.current() if s.site == site]
    return live.visible(mine, who)[0] if mine else None


def _svg(svg: bytes) -> Response:
    headers = {"Cache-Control": "private, max-age=60"}
    return Response(svg, media_type="image/svg+xml", headers=headers)


@router.get("/sites/{site}/today.svg")
def today_chart(request: Request, site: str, store: Store, who: Viewer) -> Response:
    if not sees_people(who):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "your role may not see this")

    def fetch():
        with store.connect() as conn:
            row = _site(conn, who, site)
            return *site_view.today(conn, site, ZoneInfo(row.timezone)), row.capacity

    def render(data) -> bytes:
        times, counts, capacity = data
        return charts.day_curve(times, counts, capacity, "Today")

    require_site(who, site)  # the check, even when the picture is cached
    return _svg(request.app.state.charts.get(("today", site), 60, fetch, render))


@router.get("/sites/{site}/week.svg")
def week_chart(request: Request, site: str, store: Store, who: Viewer) -> Response:
    if not sees_people(who):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "your role may not see this")

    def fetch():
        with store.connect() as conn:
            row = _site(conn, who, site)
            return site_view.hour_of_week(conn, site, ZoneInfo(row.timezone))

    def render(cells) -> bytes:
        return charts.week_heatmap(cells, f"A usual week (last {site_view.HEATMAP_WEEKS} weeks)")

    require_site(who, site)  # the check, even when the picture is cached
    return _svg(request.app.state.charts.get(("week", site), 600, fetch, render))


@router.get("/fleet")
def fleet(request: Request, store: Store, who: Viewer) -> HTMLResponse:
    return page(request, "fleet.html", who, devices=fleet_rows(store, who))


def _month(month: str | None, store: Engine, who: Principal) -> str:
    """The month asked for, or the current one where the viewer's sites are (the latest of
    their local months: in the first hours of a month in Berlin it is still the last one in
    UTC, but no longer at the door)."""
    if month:
        return month
    query = select(db.sites.c.timezone).distinct()
    if who.role == Role.SITE_OPERATOR:
        query = query.where(db.sites.c.id.in_(who.sites))
    with store.connect() as conn:
        zones = conn.scalars(query).all() or ["UTC"]
    now = datetime.now(UTC)
    return max(now.astimezone(ZoneInfo(zone)).strftime("%Y-%m") for zone in zones)


@router.get("/reports")
def report_page(
    request: Request,
    store: Store,
    who: Viewer,
    month: Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}$")] = None,
) -> HTMLResponse:
    month = _month(month, store, who)
    rows = report_for(store, who, month, None)
    return page(
        request, "report.html", who, month=month, rows=rows, definitions=reports.DEFINITIONS
    )


@router.get("/reports.csv")
def report_csv(
    store: Store,
    who: Viewer,
    month: Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}$")] = None,
) -> Response:
    month = _month(month, store, who)
    return csv_download(report_for(store, who, month, None), f"hafen-network-{month}.csv")
