"""The hub's FastAPI application: sign-in, health, and the resource routers."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import FastAPI, Form, HTTPException, Request, status
from pydantic import BaseModel
from sqlalchemy import Engine, text

from hub.access_lists import AclPublisher
from hub.api import (
    bookings,
    companies,
    events,
    occupancy,
    overview,
    people,
    reports,
    sites,
    users,
    visits,
)
from hub.api.deps import Caller, PrincipalCache, Store, client_address
from hub.auth import SESSION, AuthError
from hub.throttle import SignInThrottle, Throttled, throttled_sign_in
from hub.web.app import add_dashboard

RETRY_SECONDS = 5.0


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"


class Me(BaseModel):
    username: str
    role: str
    sites: list[str]


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """While serving, retry access lists that the broker could not take when they were made."""
    stop = threading.Event()
    publisher = app.state.publisher

    def retry() -> None:
        while not stop.wait(RETRY_SECONDS):
            publisher.flush_unsent()

    if publisher is not None:
        threading.Thread(target=retry, name="acl-retry", daemon=True).start()
    yield
    stop.set()
    app.state.live.close()


def create_app(
    engine: Engine,
    card_key: bytes | None = None,
    publisher: AclPublisher | None = None,
    public_url: str | None = None,
) -> FastAPI:
    """The API over the store behind ``engine`` (already migrated).

    ``card_key`` hashes card UIDs as the doors do; ``publisher`` sends changed access lists
    (without one, changes are stored and a warning says the lists were not sent);
    ``public_url`` is where browsers reach the hub, if a proxy gives it another name.
    """
    app = FastAPI(title="hafen hub", version="1", docs_url="/docs", lifespan=_lifespan)
    app.state.engine = engine
    app.state.card_key = card_key
    app.state.publisher = publisher
    app.state.principals = PrincipalCache()
    app.state.sign_ins = SignInThrottle()
    app.state.public_hosts = {urlsplit(public_url).netloc.lower()} if public_url else set()
    app.state.overview = overview.OverviewCache()
    add_dashboard(app, engine)

    @app.get("/health", tags=["health"])
    def health(store: Store) -> dict:
        """Answers without credentials: is the hub up and its store reachable?"""
        with store.connect() as conn:
            conn.execute(text("SELECT 1"))
        return {"status": "ok"}

    @app.post("/auth/token", response_model=Token, tags=["auth"])
    def token(
        request: Request,
        username: Annotated[str, Form(max_length=80)],
        password: Annotated[str, Form(max_length=200)],
        store: Store,
    ) -> Token:
        """Sign in with a password; the token is valid for 12 hours. After repeated failures
        further attempts get 429 with ``Retry-After`` for a while."""
        throttle, client = request.app.state.sign_ins, client_address(request)
        try:
            token = throttled_sign_in(throttle, store, username, password, client, SESSION)
        except Throttled as exc:
            raise HTTPException(
                status.HTTP_429_TOO_MANY_REQUESTS,
                str(exc),
                headers={"Retry-After": str(exc.seconds)},
            ) from None
        except AuthError as exc:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc)) from None
        return Token(access_token=token)

    @app.get("/auth/me", response_model=Me, tags=["auth"])
    def me(who: Caller) -> Me:
        return Me(username=who.username, role=who.role.value, sites=sorted(who.sites))

    app.include_router(sites.router)
    app.include_router(people.router)
    app.include_router(bookings.router)
    app.include_router(events.router)
    app.include_router(companies.router)
    app.include_router(users.router)
    app.include_router(visits.router)
    app.include_router(overview.router)
    app.include_router(occupancy.router)
    app.include_router(reports.router)
    return app
