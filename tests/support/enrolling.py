"""What the dashboard's enrolment pages are tested with: a hub's device authority whose CA is
real and whose broker is not there, and a hub served by uvicorn as `hafen hub serve` serves it.

Without a broker, tokens are made as ever (that needs only the store) and a revocation is
recorded and reported as not done at the broker, which is what an unreachable broker does.
"""

from __future__ import annotations

import html
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from hafen.signing import public_key_text
from hub.broker_rights import AdminSession
from hub.device_identity import DeviceAuthority
from hub.keys import generate_key
from hub.mqtt import BrokerLogin
from hub.server import hub_server
from sim.broker import free_port
from tests.support.edge import CARD_KEY
from tests.support.tls import make_ca
from tests.support.waiting import wait_for


def authority_without_broker(tmp_path: Path) -> DeviceAuthority:
    """The network's CA (made as `hafen hub init-ca` makes it) and a signing key in
    ``tmp_path``; the broker's admin at a port nobody listens on."""
    files = make_ca(tmp_path)
    key = generate_key(tmp_path / "hub-signing.pem")
    session = AdminSession("127.0.0.1", free_port(), BrokerLogin("hafen-admin", "unused"))
    return DeviceAuthority(
        ca=files,
        rights=session.rights,
        broker_host="localhost",
        broker_port=8883,
        public_keys=(public_key_text(key),),
        card_key=CARD_KEY,
    )


@contextmanager
def served(app: FastAPI, **options: Any) -> Iterator[str]:
    """``app`` served by uvicorn on a free port for the block; its URL. ``options`` go to
    uvicorn (``log_level``, ``access_log``, ``log_config``)."""
    server = hub_server(app, port=0, **options)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        assert wait_for(lambda: server.started, 10)
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)


def shown_command(page: str) -> str:
    """The command a token's page tells the technician to run on the Pi."""
    found = re.search(r'<code id="command">(.*?)</code>', page)
    assert found, "no command on the page"
    return html.unescape(found.group(1))


def fleet_row(page: str, device: str) -> str:
    """The fleet table's row of ``device`` (site/device)."""
    found = re.search(rf'<tr [^>]*data-device="{device}".*?</tr>', page, re.S)
    assert found, f"no row for {device}"
    return found.group(0)
