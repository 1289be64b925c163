"""The hub's application: the API's routers and the dashboard on one FastAPI app.

This is the one place that knows both adapters (hub.api and hub.web never import each other)
and what they share: the store, the publisher, the card key and the caches, handed to routes
by hub.http.deps.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI
from sqlalchemy import Engine

from hub import auth
from hub.access_lists import AclPublisher
from hub.api import ROUTERS
from hub.device_identity import DeviceAuthority
from hub.http import deps
from hub.http.body_limit import DEFAULT_MAX_BODY_BYTES, BodyLimit
from hub.http.downloads import DownloadLimits
from hub.http.errors import map_service_errors
from hub.http.inputs import Checked
from hub.list_watch import ListWatch
from hub.mail import Mailer, MailSender
from hub.rollout_runner import RolloutRunner
from hub.services.places import Gazetteer
from hub.services.release_downloads import DeviceReleases
from hub.services.users import TOKEN_MAX_DAYS
from hub.sweeper import BookingSweeper
from hub.web.app import add_dashboard

#: How often access lists the broker could not take when they were made are tried again.
RETRY_SECONDS = 5.0


def create_app(
    engine: Engine,
    card_key: bytes | None = None,
    publisher: AclPublisher | None = None,
    public_url: str | None = None,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    token_max_days: int = TOKEN_MAX_DAYS,
    authority: DeviceAuthority | None = None,
    mail: Mailer | None = None,
    gazetteer: Gazetteer | None = None,
    device_releases: DeviceReleases | None = None,
    download_limits: DownloadLimits | None = None,
) -> FastAPI:
    """The hub over the store behind ``engine`` (already migrated): API and dashboard.

    ``card_key`` hashes card UIDs as the doors do; ``publisher`` sends changed access lists
    (without one, changes are stored and a warning says the lists were not sent);
    ``public_url`` is where browsers reach the hub, if a proxy gives it another name.
    Request bodies over ``max_body_bytes`` are refused before anything reads them; no API
    token lives longer than ``token_max_days``. ``authority`` lets devices enrol and be
    revoked (without it, those routes answer 503). ``mail`` sends the outbox through an SMTP
    server (without it no mail is queued: invitations show their link instead).
    ``gazetteer`` names the places (postcodes, towns) that finding a space takes besides
    the sites' own addresses. ``device_releases`` lets doors download releases (without
    it, those routes answer 503), within ``download_limits``.
    """

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        """On the way in, hold every token to ``token_max_days``. While serving, retry access
        lists that the broker could not take when they were made, send sites' newest
        lists again until every door's own state shows them (hub.list_watch), send the
        mail outbox (hub.mail), release bookings nobody tapped in for (hub.sweeper) and drive
        the rollouts of releases to the doors (hub.rollout_runner); on the way out, end the
        dashboard's live streams."""
        stop = threading.Event()
        watch: ListWatch | None = None
        runner: RolloutRunner | None = None
        sender = MailSender(engine, mail).start() if mail is not None else None
        sweeper = BookingSweeper(engine, publisher, sends_mail=mail is not None).start()
        # Tokens made under a higher maximum than this hub's are held to it now.
        auth.hold_tokens_to(engine, timedelta(days=token_max_days))

        def retry(publisher: AclPublisher) -> None:
            while not stop.wait(RETRY_SECONDS):
                publisher.flush_unsent()

        if publisher is not None:
            threading.Thread(target=retry, args=(publisher,), name="acl-retry", daemon=True).start()
            watch = ListWatch(engine, publisher).start()
            runner = RolloutRunner(engine, publisher).start()
        yield
        stop.set()
        if watch is not None:
            watch.stop()
        if runner is not None:
            runner.stop()
        if sender is not None:
            sender.stop()
        sweeper.stop()
        live.close()

    # Every route's text and numbers are checked before its other dependencies run.
    app = FastAPI(
        title="hafen hub",
        version="1",
        docs_url="/docs",
        lifespan=lifespan,
        dependencies=[Checked],
    )
    deps.install(
        app,
        engine,
        card_key,
        publisher,
        public_url,
        token_max_days,
        authority,
        sends_mail=mail is not None,
        gazetteer=gazetteer,
        device_releases=device_releases,
        download_limits=download_limits,
    )
    live = add_dashboard(app, engine)
    map_service_errors(app)
    for router in ROUTERS:
        app.include_router(router)
    # Added last: the outermost of the application's own layers, before routing and auth.
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    return app
