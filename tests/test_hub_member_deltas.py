"""A change to one member goes out as small per-member deltas, and what the doors end up
holding is exactly what a full recompile of each site would give."""

from __future__ import annotations

import zlib
from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from edge.agent.access_list import apply_delta, apply_snapshot
from edge.agent.store import EdgeStore
from hafen.acl import AccessList, AccessListDelta
from hub import db
from tests.support.booking import at, today
from tests.support.network import TestHub

SITES = ("leipzig-ost", "borna", "grimma")
TZ = ZoneInfo("Europe/Berlin")


def _used(doc: AccessList) -> dict:
    """What a door decides on: members, cards, and the plans their grants use."""
    used = {g.plan for m in doc.members for g in m.grants if g.plan}
    return {
        "members": sorted(m.model_dump_json() for m in doc.members),
        "cards": sorted(c.model_dump_json() for c in doc.cards),
        "plans": sorted(p.model_dump_json() for p in doc.plans if p.id in used),
    }


def _versions(hub: TestHub, site: str, after: int) -> list:
    with hub.engine.connect() as conn:
        query = (
            select(db.acl_versions)
            .where(db.acl_versions.c.site == site, db.acl_versions.c.version > after)
            .order_by(db.acl_versions.c.version)
        )
        return list(conn.execute(query))


def test_member_changes_are_small_deltas_that_match_a_full_compile(tmp_path, network_api):
    hub, api = network_api
    for site in SITES:
        assert api.post("/sites", json={"id": site, "name": site}).status_code == 201
    api.post("/plans", json={"id": "flex"})
    api.post("/plans", json={"id": "borna-only", "sites": ["borna"]})
    api.put(
        "/companies/acme",
        json={"id": "acme", "name": "Acme", "plan": "flex", "sites": ["grimma"]},
    )
    for member in ("anna", "ben", "cleo"):
        api.post("/members", json={"id": member, "name": member.title()})
    doors = {site: EdgeStore(tmp_path / f"{site}.db") for site in SITES}
    applied = dict.fromkeys(SITES, 0)
    steps = [
        ("post", "/members/anna/grants", {"plan": "borna-only"}),
        ("post", "/members/anna/cards", {"uid": "04A1B2C3D4E5F6"}),
        ("post", "/members/ben/cards", {"uid": "04B1B2C3D4E5F6"}),
        ("post", "/members/ben/cards", {"uid": "04C1B2C3D4E5F6"}),
        ("post", "/members/ben/grants", {"plan": "flex"}),
        ("put", "/members/cleo/company", {"company": "acme"}),
        ("post", "/members/cleo/cards", {"uid": "04D1B2C3D4E5F6"}),
        ("post", "/members/ben/block", None),
        ("post", "/sites/leipzig-ost/bookings", "anna-today"),
        ("put", "/members/cleo/company", {"company": None}),
        ("post", "/members/ben/unblock", None),
        ("delete", "/members/ben", None),
    ]
    for method, path, body in steps:
        if body == "anna-today":  # a day guest tomorrow (one in the past is refused)
            tomorrow = today() + timedelta(days=1)
            body = {
                "member": "anna",
                "starts_at": at(tomorrow, "08:00"),
                "ends_at": at(tomorrow, "18:00"),
            }
        response = api.request(method, path, json=body)
        assert response.status_code < 300, (path, response.text)
        for site, store in doors.items():
            for row in _versions(hub, site, applied[site]):
                body_json = zlib.decompress(row.body)
                if row.kind == "snapshot":
                    doc = AccessList.model_validate_json(body_json)
                    apply_snapshot(store, doc, site, TZ, b"")
                    applied[site] = doc.version
                else:
                    delta = AccessListDelta.model_validate_json(body_json)
                    assert row.message_bytes < 1024, (path, site)
                    applied[site] = apply_delta(store, delta, site, TZ)
            hub.publisher._current.clear()  # rebuild the hub's view from what was sent
            sent = hub.publisher.current(site)
            if sent is None:
                continue  # nothing reaches this site yet
            fresh = hub.publisher.compiler.compile(site, sent.version)
            assert _used(sent) == _used(fresh), (path, site)
    # Erasure made every door forget ben and both his cards; grimma lost cleo with acme.
    grimma = hub.publisher.current("grimma")
    assert {m.id for m in grimma.members} == set()
    with doors["leipzig-ost"].read() as conn:
        assert conn.execute("SELECT count(*) FROM cards").fetchone()[0] == 1  # anna's
        assert [r[0] for r in conn.execute("SELECT id FROM members")] == ["anna"]
    # After each site's first list, every change went out as a delta.
    for site in SITES:
        kinds = [row.kind for row in _versions(hub, site, 0)]
        assert kinds[0] == "snapshot" and set(kinds[1:]) == {"delta"}, (site, kinds)
