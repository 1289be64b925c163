"""Request bodies over a limit are refused before routing, auth or parsing see them.

FastAPI reads a route's whole body before it resolves the route's dependencies, the caller
among them: without a bound, anyone could make the hub hold hundreds of megabytes before it
answered 401. This pure ASGI middleware sits outside everything else in the application:

- a ``Content-Length`` over the limit is answered 413 at once, without reading a byte of it;
- a body without a length (``Transfer-Encoding: chunked``) is read here first, counted as it
  arrives and answered 413 the moment it passes the limit, so the route never runs and at
  most the limit is ever held; a body within the limit is handed on as one message.

The 413 closes the connection: the rest of a refused body is never read. No route of the hub
takes files or bulk lists, so one limit serves them all.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: The default limit, in bytes: far above any JSON or form the hub's routes take.
DEFAULT_MAX_BODY_BYTES = 1 << 20


class BodyLimit:
    """Refuse request bodies of more than ``max_bytes`` with 413, before the application."""

    def __init__(self, app: ASGIApp, max_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])  # the server joined or refused repeated framing ones
        length = headers.get(b"content-length")
        if length is not None:
            # The server delivers exactly this many bytes (h11 checks the number's form).
            if not length.isdigit() or int(length) > self.max_bytes:
                await self._refuse(send)
                return
            await self.app(scope, receive, send)
            return
        if b"transfer-encoding" not in headers:  # no body at all (HTTP/1.1)
            await self.app(scope, receive, send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: nobody to answer
                return
            body += message.get("body", b"")
            if len(body) > self.max_bytes:
                await self._refuse(send)
                return
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(bytes(body), receive), send)

    async def _refuse(self, send: Send) -> None:
        detail = f"the request body is larger than {self.max_bytes} bytes"
        content = json.dumps({"detail": detail}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(content)).encode()),
                    (b"connection", b"close"),  # the unread rest of the body is not wanted
                ],
            }
        )
        await send({"type": "http.response.body", "body": content})


def _replay(body: bytes, receive: Receive) -> Receive:
    """``receive`` for the application: the body read here first, then the server's own
    messages (a disconnect, which streaming responses wait for)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
