"""A stand-in hub for the Pi's side of enrolment, over HTTPS (or plain HTTP on loopback).

It answers ``POST /enrol`` as the hub does, for one token: the device's certificate request
signed by a CA of its own, and a complete bundle. Its server certificate is from that private
CA (for 127.0.0.1 and localhost), so a client trusts it only when told to. It records every
request that reached it. What it tests is the client (whom it trusts, what it sends, what it
writes); the hub's own rules are tested with the real hub (tests/support/provisioned.py).
"""

from __future__ import annotations

import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization

from hafen.enrolment import ENROL_PATH, EnrolmentRequest
from hub.pki import issue_device_certificate
from tests.support.edge import CARD_KEY_HEX
from tests.support.tls import make_ca

SITE, DEVICE = "leipzig-ost", "front-door"
#: A hub's signing key, as the bundle names it (any valid Ed25519 public key will do).
HUB_PUBLIC_KEY = "WAIGItqD+Q+p7KxQKUaL8x/nGdxG/q7419gYeCypkuI="


class StandInHub:
    """The hub at ``url`` (https://127.0.0.1:port, or http:// if not ``tls``); ``ca.ca_cert``
    is the CA to trust it by, and the network's CA the device's certificate chains to."""

    def __init__(self, root: Path, token: str, tls: bool = True) -> None:
        self.ca = make_ca(root, "hub-ca", "127.0.0.1", "localhost")
        self.token = token
        #: Every enrolment request that reached the hub, in order.
        self.requests: list[EnrolmentRequest] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(self.ca.broker_cert, self.ca.broker_key)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> StandInHub:
        self._thread.start()
        return self

    def _serve(self) -> None:
        self._server.serve_forever(poll_interval=0.05)  # stopped quickly at the end

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)

    def answer(self, request: EnrolmentRequest) -> tuple[int, dict[str, Any]]:
        """The status and JSON body the hub answers ``request`` with."""
        self.requests.append(request)
        if request.token != self.token:
            return 403, {"detail": "this enrolment token is not known; ask for a new one"}
        cert = issue_device_certificate(self.ca, request.csr.encode(), SITE, DEVICE)
        return 200, {
            "site": {"id": SITE, "timezone": "Europe/Berlin"},
            "device": DEVICE,
            "kind": "door",
            "certificate": cert.public_bytes(serialization.Encoding.PEM).decode(),
            "ca_certificate": self.ca.ca_cert.read_text(),
            "not_after": cert.not_valid_after_utc.isoformat(),
            "hub_public_keys": [HUB_PUBLIC_KEY],
            "card_key": CARD_KEY_HEX,
            "broker": {
                "host": "localhost",
                "port": 8883,
                "username": f"{SITE}.{DEVICE}",
                "password": "a password of the device's own",
            },
        }


def _handler(hub: StandInHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            if self.path != ENROL_PATH:
                self._send(404, {"detail": "not found"})
                return
            length = int(self.headers.get("Content-Length", "0"))
            request = EnrolmentRequest.model_validate_json(self.rfile.read(length))
            self._send(*hub.answer(request))

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the test reads ``hub.requests``, not a log."""

    return Handler
