"""The headcount's 90 % interval at the hub (issue 15), on SQLite and PostgreSQL: stored as
samples arrive, added up over a site's doors (none while a door from before the interval
counts), turned into the places free, served by the API and shown on the site page; samples
stored before the migration keep no interval."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy import insert, select

from hub import db
from hub.app import create_app
from hub.auth import Principal, Role
from hub.ingest.batch import Batch
from hub.ingest.store import IngestStore
from hub.services import occupancy, overview
from tests.support.events import sample
from tests.support.hub import PASSWORD, as_user

SITE = "leipzig-ost"
ADMIN = Principal(1, "nadia", Role.NETWORK_ADMIN, frozenset())
TECHNICIAN = Principal(3, "tim", Role.TECHNICIAN, frozenset())


@pytest.fixture
def site(engine) -> IngestStore:
    """leipzig-ost with two doors, stored directly (asked for before ``api``, it is there when
    the API starts); returns the ingest store that writes its samples."""
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(insert(db.sites).values(id=SITE, timezone="Europe/Berlin", name="Hafen Ost"))
        conn.execute(
            insert(db.devices),
            [{"site": SITE, "id": door, "created_at": now} for door in ("door-1", "door-2")],
        )
    return IngestStore(engine)


def write(store: IngestStore, *samples: dict) -> None:
    store.write(Batch(events=list(samples)))


def now_card(engine, name: str) -> str:
    """The site page's "now" card as ``name`` sees it, signed in through the dashboard's form."""
    client = TestClient(create_app(engine))
    form = {"username": name, "password": PASSWORD, "next": "/ui/"}
    assert client.post("/ui/sign-in", data=form, follow_redirects=False).status_code == 303
    page = client.get(f"/ui/sites/{SITE}")
    assert page.status_code == 200
    found = re.search(r'<div class="card now".*?</div>', page.text, re.S)
    return found.group(0) if found else ""


def text_of(card: str, field: str) -> str:
    found = re.search(rf'data-field="{field}"[^>]*>([^<]*)<', card)
    assert found, field
    return found.group(1)


def test_a_sample_with_its_interval_is_stored_served_and_shown(site, api):
    write(site, sample(SITE, datetime.now(UTC), 12, low=10, high=14, confidence=0.84))
    with api.engine.connect() as conn:
        stored = conn.execute(select(db.occupancy_samples)).one()
        newest = conn.execute(select(db.occupancy_now)).one()
    assert (stored.count, stored.low, stored.high) == (12, 10, 14)
    assert (newest.count, newest.low, newest.high) == (12, 10, 14)
    body = api.get(f"/sites/{SITE}/occupancy", headers=as_user(api, "olga")).json()
    assert (body["count"], body["low"], body["high"], body["capacity"]) == (12, 10, 14, 20)
    # Against a capacity of 20: at least 6 free unless more than 14 are in, at most 10.
    assert (body["free_at_least"], body["free_at_most"]) == (6, 10)
    assert body["confidence"] == pytest.approx(0.84)
    card = now_card(api.engine, "nadia")
    assert text_of(card, "count") == "12" and "/ 20 people" in card
    assert text_of(card, "interval") == "(10–14)"
    assert text_of(card, "free") == "6–10 places free"
    assert now_card(api.engine, "tim") == ""  # a technician sees no people, nor places
    [tech] = overview.visible(overview.build_live(api.engine), TECHNICIAN)
    assert [tech[k] for k in ("count", "low", "high", "free_at_least", "free_at_most")] == [
        None
    ] * 5
    assert tech["capacity"] == 20


def test_a_site_with_a_door_from_before_the_interval_has_none(site, api):
    now = datetime.now(UTC)
    write(
        site,
        sample(SITE, now, 3, "door-1", low=2, high=5, confidence=0.9),
        sample(SITE, now, 4, "door-2", confidence=0.7),  # no bounds: an old door
    )
    body = api.get(f"/sites/{SITE}/occupancy", headers=as_user(api, "nadia")).json()
    assert body["count"] == 7 and body["confidence"] == pytest.approx(0.7)  # the weakest
    assert [body[k] for k in ("low", "high", "free_at_least", "free_at_most")] == [None] * 4
    card = now_card(api.engine, "nadia")
    assert text_of(card, "count") == "7"
    assert text_of(card, "interval") == "" and text_of(card, "free") == ""
    # The old door updated: both send bounds, and the site's interval adds them up.
    write(site, sample(SITE, now + timedelta(seconds=1), 4, "door-2", low=3, high=6))
    body = api.get(f"/sites/{SITE}/occupancy", headers=as_user(api, "nadia")).json()
    assert (body["count"], body["low"], body["high"]) == (7, 5, 11)
    assert (body["free_at_least"], body["free_at_most"]) == (9, 15)
    live = {s.site: s for s in overview.build_live(api.engine)}[SITE]
    assert (live.low, live.high, live.free_at_least, live.free_at_most) == (5, 11, 9, 15)


def test_an_old_door_gone_quiet_no_longer_takes_the_interval_away(site):
    now = datetime.now(UTC)
    write(
        site,
        sample(SITE, now - timedelta(minutes=30), 4, "door-2"),  # quiet for longer than HOLD
        sample(SITE, now, 3, "door-1", low=2, high=5),
    )
    shown = occupancy.occupancy_now(site.engine, ADMIN, SITE)
    assert (shown.count, shown.low, shown.high, shown.stale) == (3, 2, 5, False)
    assert (shown.free_at_least, shown.free_at_most) == (15, 18)


def test_a_site_heard_from_long_ago_promises_no_free_places(site):
    write(site, sample(SITE, datetime.now(UTC) - timedelta(minutes=30), 3, low=2, high=5))
    shown = occupancy.occupancy_now(site.engine, ADMIN, SITE)
    assert (shown.count, shown.low, shown.high, shown.stale) == (3, 2, 5, True)
    assert (shown.free_at_least, shown.free_at_most) == (None, None)


def test_free_places_stop_at_zero_and_need_a_capacity(site):
    now = datetime.now(UTC)
    write(site, sample(SITE, now, 9, "door-1", low=8, high=12, capacity=10))
    shown = occupancy.occupancy_now(site.engine, ADMIN, SITE)
    assert (shown.free_at_least, shown.free_at_most) == (0, 2)  # 12 may be in: none promised
    write(
        site, sample(SITE, now + timedelta(seconds=1), 9, "door-1", low=8, high=12, capacity=None)
    )
    shown = occupancy.occupancy_now(site.engine, ADMIN, SITE)
    assert (shown.low, shown.high) == (8, 12)
    assert (shown.capacity, shown.free_at_least, shown.free_at_most) == (None, None, None)


def test_samples_stored_before_the_migration_keep_no_interval(hub_url):
    engine = db.connect(hub_url, upgrade=False)
    try:
        db.migrate(engine, "0013")
        at = datetime.now(UTC)
        common = {"site": SITE, "device": "door-1", "count": 5, "capacity": 20}
        common |= {"confidence": 0.8, "present": True, "rooms": {}, "co2": {}}
        columns = [*common, "at"]
        samples = sa.table(
            "occupancy_samples",
            *(sa.column(c, sa.JSON if c in ("rooms", "co2") else None) for c in columns),
            *(sa.column(c) for c in ("event_id", "epoch", "seq", "cause", "received_at")),
        )
        newest = sa.table(
            "occupancy_now",
            *(sa.column(c, sa.JSON if c in ("rooms", "co2") else None) for c in columns),
        )
        with engine.begin() as conn:
            conn.execute(db.sites.insert().values(id=SITE, timezone="Europe/Berlin"))
            conn.execute(
                samples.insert().values(
                    **common,
                    at=at,
                    event_id="e" * 32,
                    epoch="00000000000000aa",
                    seq=1,
                    cause="minute",
                    received_at=at,
                )
            )
            conn.execute(newest.insert().values(**common, at=at))
        db.migrate(engine)
        with engine.connect() as conn:
            stored = conn.execute(select(db.occupancy_samples)).one()
            kept = conn.execute(select(db.occupancy_now)).one()
        assert (stored.count, stored.low, stored.high) == (5, None, None)
        assert (kept.count, kept.low, kept.high) == (5, None, None)
        shown = occupancy.occupancy_now(engine, ADMIN, SITE)
        assert (shown.count, shown.low, shown.free_at_least) == (5, None, None)
        # New samples keep their bounds beside the old ones.
        write(IngestStore(engine), sample(SITE, at + timedelta(seconds=1), 6, low=5, high=8))
        shown = occupancy.occupancy_now(engine, ADMIN, SITE)
        assert (shown.count, shown.low, shown.high) == (6, 5, 8)
        # And down again (the bounds go, the samples stay), and up.
        from alembic import command

        cfg = db.alembic_config()
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0013")
        db.migrate(engine)
        with engine.connect() as conn:
            counts = conn.execute(select(db.occupancy_samples.c.count, db.occupancy_samples.c.low))
            assert sorted(counts.all()) == [(5, None), (6, None)]
    finally:
        engine.dispose()
