"""A small network for tests: a real mosquitto, the hub's ingest and publisher, edge agents
connected to it."""

from __future__ import annotations

import time
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, func, select

from edge.agent.agent import EdgeAgent
from edge.agent.config import EdgeConfig
from edge.agent.store import EdgeStore
from hafen.cards import card_hash
from hafen.config import validate_config
from hafen.protocol import DeviceState
from hafen.signing import public_key_text
from hub import db
from hub.access_lists import AclPublisher
from hub.auth import Role
from hub.ingest.worker import IngestWorker
from hub.mqtt import HubClient
from sim.broker import LocalBroker
from sim.card_emulator import EmulatedCard
from sim.door import shut_door
from tests.support.edge import CARD_KEY, edge_config_dict, free_udp_port
from tests.support.hub import api_client, migrated_sqlite, sign_in_as
from tests.support.waiting import wait_for


class TestHub:
    """The hub side: store, signing key, publisher and one or more ingest workers."""

    __test__ = False  # a helper that test modules import, not a class of tests

    def __init__(
        self,
        tmp_path: Path,
        broker: LocalBroker,
        workers: int = 1,
        url: str | None = None,
        mirror=None,
        catch_up: bool = True,
        card_key: bytes | None = CARD_KEY,
    ) -> None:
        """``catch_up=False``: ingest sends no catch-up snapshots, as when each is lost (a
        squatter's clean start on the door's client id wipes it with the door's session).
        ``card_key``: the network's, which the test doors hold (they seal their states)."""
        self.broker = broker
        self.engine = db.connect(url or migrated_sqlite(tmp_path / "hub.db"))
        self.key = Ed25519PrivateKey.generate()
        self.client = HubClient("127.0.0.1", broker.port, client_id="hafen-hub-test")
        self.publisher = AclPublisher(
            self.engine, self.key, self.client.publish, self.client.publish_many
        )
        self.workers = [
            IngestWorker(
                self.engine,
                "127.0.0.1",
                broker.port,
                self.key,
                name=str(i),
                on_state=self._catch_up if catch_up else None,
                mirror=mirror,
                card_key=card_key,
            )
            for i in range(workers)
        ]

    def _catch_up(self, site: str, device: str, state: DeviceState) -> None:
        """As `hafen hub ingest` does: a device behind on its list gets a snapshot."""
        self.publisher.catch_up(site, device, state.acl_version)

    def start(self) -> TestHub:
        self.client.start()
        for worker in self.workers:
            worker.start()
        return self

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.publisher.close()
        self.client.stop()
        self.engine.dispose()

    @property
    def public_key(self) -> str:
        return public_key_text(self.key)

    def add_site(self, site: str, capacity: int | None = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                db.sites.insert().values(id=site, timezone="Europe/Berlin", capacity=capacity)
            )

    def add_device(self, site: str, device: str, kind: str = "door") -> None:
        """Register a device (and its site, if new): ingest believes only registered ones."""
        with self.engine.begin() as conn:
            if conn.scalar(select(db.sites.c.id).where(db.sites.c.id == site)) is None:
                conn.execute(db.sites.insert().values(id=site, timezone="Europe/Berlin"))
            known = select(db.devices.c.id).where(
                db.devices.c.site == site, db.devices.c.id == device
            )
            if conn.scalar(known) is None:
                conn.execute(
                    db.devices.insert().values(
                        site=site, id=device, kind=kind, created_at=datetime.now(UTC)
                    )
                )
        for worker in self.workers:  # believed at once, not within the registry's second
            worker.screen.registry.invalidate()

    def add_member(self, member: str, uid: bytes, plan: str = "flex") -> str:
        """A member with the all-network plan and one card; returns the card hash."""
        return add_member(self.engine, member, uid, plan)

    def events(self, site: str | None = None) -> list:
        with self.engine.connect() as conn:
            query = select(db.events).order_by(db.events.c.device, db.events.c.seq)
            if site:
                query = query.where(db.events.c.site == site)
            return list(conn.execute(query).all())

    def samples(self) -> list:
        """Occupancy samples, stored apart from door events."""
        with self.engine.connect() as conn:
            o = db.occupancy_samples.c
            return list(conn.execute(select(db.occupancy_samples).order_by(o.device, o.seq)))

    def dead_letters(self) -> list:
        with self.engine.connect() as conn:
            return list(conn.execute(select(db.dead_letters)))


def add_member(engine: Engine, member: str, uid: bytes, plan: str = "flex") -> str:
    """A member with the all-network plan ``plan`` and one card; returns the card hash."""
    digest = card_hash(CARD_KEY, uid)
    with engine.begin() as conn:
        if conn.scalar(select(func.count()).where(db.plans.c.id == plan)) == 0:
            conn.execute(db.plans.insert().values(id=plan, sites=None, windows=None))
        conn.execute(db.members.insert().values(id=member, blocked=False))
        conn.execute(db.grants.insert().values(member_id=member, plan_id=plan))
        conn.execute(db.cards.insert().values(hash=digest, member_id=member, revoked=False))
    return digest


def edge_config(
    tmp_path: Path,
    hub: TestHub,
    site: str = "leipzig-ost",
    device: str = "door-1",
    sections: dict | None = None,
    **door,
) -> EdgeConfig:
    raw = edge_config_dict(tmp_path, reader=f"udp:127.0.0.1:{free_udp_port()}", **door)
    raw.update(sections or {})
    raw["site"]["id"] = site
    raw["device"]["id"] = device
    raw["mqtt"] = {
        "host": "127.0.0.1",
        "port": hub.broker.port,
        "keepalive": 5,
        "reconnect_max_seconds": 1,
    }
    raw["hub"] = {"public_keys": [hub.public_key]}
    return validate_config(raw, EdgeConfig)


@contextmanager
def connected_edge(tmp_path: Path, hub: TestHub, **kwargs):
    """An edge agent on mock pins and the UDP reader, linked to the test broker; its device is
    registered at the hub (ingest believes only registered devices)."""
    cfg = edge_config(tmp_path, hub, **kwargs)
    hub.add_device(cfg.site.id, cfg.device.id)
    store = EdgeStore(cfg.store.path, cfg.store.synchronous)
    agent = EdgeAgent(cfg, store)
    agent.start()
    shut_door(cfg.door)
    try:
        assert wait_for(lambda: agent.link is not None and agent.link.connected, 10)
        yield agent, EmulatedCard(cfg.reader.path)
    finally:
        agent.stop()
        store.close()


def acl_version(agent: EdgeAgent) -> int:
    from edge.agent.access_list import applied_version

    return applied_version(agent.store)


def door_decisions(hub: TestHub) -> list[dict]:
    """What the door decided at each tap so far, oldest first (its ``door.decision`` events)."""
    return [e.data for e in hub.events() if e.kind == "door.decision"]


def tap_again(card: EmulatedCard, uid: str) -> None:
    """Take the card away long enough for the reader to notice (two empty polls), then tap."""
    time.sleep(2.5)
    card.present(bytes.fromhex(uid))


@pytest.fixture
def broker(tmp_path):
    """A real mosquitto with the shipped settings, for this test alone."""
    with LocalBroker(tmp_path / "broker") as running:
        yield running


@pytest.fixture
def network_api(tmp_path, hub_url):
    """A test hub on a real mosquitto, its store on each database, and its API (sending changed
    access lists through the hub's publisher) signed in as nadia, the network admin; yields
    (hub, api)."""
    with LocalBroker(tmp_path / "broker") as broker:
        hub = TestHub(tmp_path, broker, url=hub_url).start()
        with api_client(hub.engine, CARD_KEY, hub.publisher) as client:
            client.headers.update(sign_in_as(client, Role.NETWORK_ADMIN))
            yield hub, client
        hub.stop()
