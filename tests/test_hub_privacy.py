"""GDPR at the hub: retention pseudonymises old events, export and erasure, both databases."""

from __future__ import annotations

import itertools
import json
import os
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from hub import db
from hub.auth import Role
from hub.ingest.batch import Batch
from hub.ingest.store import IngestStore
from hub.privacy import PSEUDONYM_PREFIX, pseudonymize_events
from tests.support.edge import CARD_KEY
from tests.support.hub import api_client, sign_in_as

#: Each event at a place of its own (the store holds one per place).
_seq = itertools.count(1)


def visit(member: str, card: str, at: datetime, site: str = "leipzig-ost") -> dict:
    return {
        "event_id": os.urandom(16).hex(),
        "site": site,
        "device": "door-1",
        "epoch": "00000000000000aa",
        "seq": next(_seq),
        "kind": "door.decision",
        "at": at,
        "data": {"card": card, "allowed": True, "member": member, "plan": "flex"},
        "received_at": at,
    }


def test_retention_pseudonymises_old_events_and_keeps_the_counts(engine):
    now = datetime.now(UTC)
    old = now - timedelta(days=200)
    IngestStore(engine).write(
        Batch(
            events=[
                visit("anna", "a" * 32, old),
                visit("anna", "a" * 32, old, site="borna"),
                visit("ben", "b" * 32, old),
                visit("anna", "a" * 32, now),
            ]
        )
    )
    assert pseudonymize_events(engine, now - timedelta(days=180)) == 3
    assert pseudonymize_events(engine, now - timedelta(days=180)) == 0  # done already
    with engine.connect() as conn:
        rows = conn.execute(select(db.events.c.at, db.events.c.site, db.events.c.data)).all()
    scrubbed = [r.data for r in rows if r.data["member"].startswith(PSEUDONYM_PREFIX)]
    assert len(scrubbed) == 3 and all("card" not in d for d in scrubbed)
    assert len({d["member"] for d in scrubbed}) == 2  # unique members still countable
    anna = {r.site for r in rows if r.data["member"] == scrubbed[0]["member"]}
    assert len(anna) in (1, 2)
    assert all(d["member"] not in ("anna", "ben") for d in scrubbed)
    assert [r.data["member"] for r in rows if r.data.get("card")] == ["anna"]  # the recent one


def test_export_and_erasure_through_the_api(engine):
    with api_client(engine, CARD_KEY) as api:
        api.headers.update(sign_in_as(api, Role.NETWORK_ADMIN))
        api.post("/sites", json={"id": "leipzig-ost", "name": "Leipzig-Ost"})
        api.post("/members", json={"id": "anna", "name": "Anna A.", "email": "anna@example.org"})
        card = api.post("/members/anna/cards", json={"uid": "04A1B2C3D4E5F6"}).json()["hash"]
        IngestStore(engine).write(Batch(events=[visit("anna", card, datetime.now(UTC))]))
        exported = api.get("/members/anna/export").json()
        assert exported["member"]["email"] == "anna@example.org"
        assert [c["hash"] for c in exported["cards"]] == [card]
        assert len(exported["door_events"]) == 1
        assert "04a1b2c3d4e5f6" not in json.dumps(exported).lower()
        assert api.delete("/members/anna").status_code == 204
        assert api.get("/members/anna/export").status_code == 404
        assert api.delete("/members/anna").status_code == 404
    with engine.connect() as conn:
        [data] = conn.execute(select(db.events.c.data)).scalars().all()
        assert data["member"].startswith(PSEUDONYM_PREFIX) and "card" not in data
        assert conn.execute(select(db.cards)).all() == []
        assert conn.execute(select(db.members)).all() == []
