"""Serving the hub's application with uvicorn, so that it stops promptly.

Open dashboard streams never end by themselves: a plain uvicorn waits for them for its whole
grace period on every stop, then cancels them with a traceback each. This server ends them
first (their loops watch the live feed), so a stop takes as long as the slowest request.
"""

from __future__ import annotations

import gc
import socket
from typing import Any

import uvicorn
from fastapi import FastAPI

from hub.web import charts

#: The grace period for requests still running when the hub is told to stop, in seconds.
GRACE_SECONDS = 3


class HubServer(uvicorn.Server):
    """uvicorn that ends the dashboard's live streams before it waits for connections."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        charts.prepare()  # Matplotlib and its fonts, loaded now rather than by a page
        # What is loaded by now lives as long as the server: keeping it out of the cyclic
        # collector's full passes took 100 ms pauses out of every few page loads.
        gc.collect()
        gc.freeze()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        live = getattr(getattr(self.config.app, "state", None), "live", None)
        if live is not None:
            live.close()
        await super().shutdown(sockets=sockets)


def hub_server(
    app: FastAPI, host: str = "127.0.0.1", port: int = 8080, **options: Any
) -> HubServer:
    """A server for the hub's ``app``; ``options`` go to ``uvicorn.Config``."""
    options.setdefault("log_level", "warning")
    options.setdefault("timeout_graceful_shutdown", GRACE_SECONDS)
    return HubServer(uvicorn.Config(app, host=host, port=port, **options))
