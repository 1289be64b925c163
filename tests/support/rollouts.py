"""Rollouts under test (issue 17): doors in the store as enrolment and ingest leave them, a
release row, the people who steer and read rollouts, the doors' update reports written as
ingest writes them, and the orders the hub sends, caught on a real mosquitto."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, insert, select, update

from edge.agent.remote import CommandVerifier
from hub import db
from hub.access_lists import AclPublisher
from hub.auth import Principal, Role
from hub.ingest.batch import Batch
from hub.ingest.store import IngestStore
from hub.mqtt import HubClient
from hub.services.rollout_driver import Send, command_sender
from sim.broker import LocalBroker
from tests.support.events import event
from tests.support.refusals import Client
from tests.support.waiting import wait_for

ADMIN = Principal(user_id=1, username="nadia", role=Role.NETWORK_ADMIN, sites=frozenset())
TECHNICIAN = Principal(user_id=3, username="tim", role=Role.TECHNICIAN, sites=frozenset())


def operator(*sites: str) -> Principal:
    return Principal(user_id=2, username="olga", role=Role.SITE_OPERATOR, sites=frozenset(sites))


def add_release(engine: Engine, version: str) -> None:
    """A release row (its manifest's content matters to the doors, not to rollouts)."""
    with engine.begin() as conn:
        conn.execute(
            insert(db.releases).values(
                version=version,
                manifest=b"sealed manifest of " + version.encode(),
                files=1,
                bytes=1,
                created_at=datetime.now(UTC),
            )
        )


def add_rollback(engine: Engine, version: str, rollback_from: str) -> None:
    """A rollback held to release ``version`` from ``rollback_from``, as
    hub.services.releases.add_rollback records it (its manifest matters to the doors)."""
    with engine.begin() as conn:
        conn.execute(
            insert(db.release_rollbacks).values(
                version=version,
                rollback_from=rollback_from,
                manifest=b"sealed rollback of " + version.encode(),
                created_by="cli:nadia",
                created_at=datetime.now(UTC),
            )
        )


def add_door(
    engine: Engine,
    site: str,
    device: str,
    software: str | None = "1.3.0",
    online: bool = True,
    enrolled: bool = True,
    revoked: bool = False,
    timezone: str = "Europe/Berlin",
) -> None:
    """A door (and its site, if new) as enrolment left it, with the state it reported last
    (``software`` None: it never reported one)."""
    now = datetime.now(UTC)
    with engine.begin() as conn:
        if conn.scalar(select(db.sites.c.id).where(db.sites.c.id == site)) is None:
            conn.execute(insert(db.sites).values(id=site, timezone=timezone))
        conn.execute(
            insert(db.devices).values(
                site=site,
                id=device,
                kind="door",
                created_at=now,
                enrolled_at=now if enrolled else None,
                revoked_at=now if revoked else None,
            )
        )
        if software is not None:
            conn.execute(
                insert(db.device_states).values(
                    site=site, device=device, online=online, software=software, received_at=now
                )
            )


def set_online(engine: Engine, site: str, device: str, online: bool) -> None:
    s = db.device_states.c
    with engine.begin() as conn:
        conn.execute(
            update(db.device_states).where(s.site == site, s.device == device).values(online=online)
        )


def report(
    engine: Engine,
    rollout: int,
    door: str,
    step: str,
    version: str,
    running: str | None = None,
    detail: str = "",
) -> None:
    """A door's ``device.update`` event (``door``: site/device), written as ingest writes it."""
    site, device = door.split("/")
    data = {"rollout": rollout, "version": version, "step": step}
    data |= {"running": running or version, "detail": detail}
    IngestStore(engine).write(
        Batch(events=[event(site, "device.update", datetime.now(UTC), data, device)])
    )


def no_send(site: str, device: str, order: object) -> None:
    """The driver's ``send`` for tests that look at the steps, not at the orders sent (those
    are caught on a real broker: ``hub_orders``)."""


def steps(engine: Engine, rollout: int) -> dict[str, str]:
    """Each door's step in ``rollout``, by site/device."""
    rd = db.rollout_devices.c
    with engine.connect() as conn:
        rows = conn.execute(
            select(rd.site, rd.device, rd.step).where(rd.rollout_id == rollout)
        ).all()
    return {f"{r.site}/{r.device}": r.step for r in rows}


class Orders:
    """The ``update`` orders the hub publishes, caught on the broker and each checked as
    the door checks it (edge.agent.remote.CommandVerifier)."""

    def __init__(self, port: int, key: Ed25519PrivateKey) -> None:
        self.key = key
        self.publisher: AclPublisher | None = None
        self._lock = threading.Lock()
        self._messages: list[mqtt.MQTTMessage] = []
        self.client = Client(port)
        subscribed = threading.Event()
        self.client.client.on_message = lambda _c, _u, message: self._take(message)
        self.client.client.on_subscribe = lambda *_: subscribed.set()
        self.client.client.subscribe("hafen/v1/+/+/cmd/update", qos=1)
        assert subscribed.wait(5)

    def _take(self, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self._messages.append(message)

    def take(self, expected: int) -> list[tuple[str, dict]]:
        """The orders that arrived since the last take once ``expected`` did (and a moment
        more, for any beyond), each as (site/device, its args), verified by a door of that
        name (a fresh one each: it has seen no id yet)."""
        wait_for(lambda: len(self._messages) >= expected, 5)
        time.sleep(0.2)
        with self._lock:
            messages, self._messages = self._messages, []
        taken = []
        for message in messages:
            _prefix, _version, site, device, _cmd, name = message.topic.split("/")
            verifier = CommandVerifier(site, device, [self.key.public_key()])
            command = verifier.verify(name, bytes(message.payload), datetime.now(UTC))
            taken.append((f"{site}/{device}", command.args))
        return taken


@contextmanager
def hub_orders(broker: LocalBroker, engine: Engine) -> Iterator[tuple[Send, Orders]]:
    """The driver's ``send``, publishing on a real hub publisher's connection, and the orders
    it sent as they arrive at the broker."""
    key = Ed25519PrivateKey.generate()
    client = HubClient("127.0.0.1", broker.port, client_id=f"hafen-hub-{id(engine)}")
    client.start()
    orders = Orders(broker.port, key)
    publisher = AclPublisher(engine, key, client.publish, client.publish_many)
    orders.publisher = publisher  # for a driver of its own (hub.rollout_runner)
    try:
        yield command_sender(publisher), orders
    finally:
        orders.client.leave()
        publisher.close()
        client.stop()
