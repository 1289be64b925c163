"""Mounting the dashboard on the hub's application: pages, assets, the live feed."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine

from hub.web import pages
from hub.web.charts import ChartCache
from hub.web.live import LiveFeed
from hub.web.session import PREFIX, SignInRequired, to_sign_in


def add_dashboard(app: FastAPI, engine: Engine) -> None:
    """The dashboard under ``/ui``; its assets from the hub itself, never from a CDN."""
    app.state.live = LiveFeed(engine)
    app.state.charts = ChartCache()
    app.add_exception_handler(SignInRequired, to_sign_in)
    app.mount(
        f"{PREFIX}/static",
        StaticFiles(directory=Path(__file__).parent / "static"),
        name="ui-static",
    )
    app.include_router(pages.router)

    @app.get(PREFIX, include_in_schema=False)
    def dashboard_root() -> RedirectResponse:
        return RedirectResponse(f"{PREFIX}/", status_code=308)
