"""Four sites, six members with plans and companies, and a door store per site fed every
access-list version the hub records: for tests of what a change sends to which doors."""

from __future__ import annotations

import threading
import zlib
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select

from edge.agent.access_list import apply_delta, apply_snapshot
from edge.agent.store import EdgeStore
from hafen.acl import AccessList, AccessListDelta
from hub import db
from tests.support.network import TestHub

SITES = ("a-dorf", "b-stadt", "c-hafen", "d-mark")
TZ = ZoneInfo("Europe/Berlin")


class Doors:
    """One door store per site, fed every version the hub recorded, as a door would be."""

    def __init__(self, tmp_path: Path, hub: TestHub) -> None:
        self.hub = hub
        self.stores = {site: EdgeStore(tmp_path / f"{site}.db") for site in SITES}
        self.applied = dict.fromkeys(SITES, 0)

    def follow(self) -> dict[str, list[AccessList | AccessListDelta]]:
        """Apply every version recorded since the last call; returns them by site."""
        new: dict[str, list[AccessList | AccessListDelta]] = {}
        for site, store in self.stores.items():
            with self.hub.engine.connect() as conn:
                v = db.acl_versions.c
                rows = conn.execute(
                    select(db.acl_versions)
                    .where(v.site == site, v.version > self.applied[site])
                    .order_by(v.version)
                ).all()
            for row in rows:
                body = zlib.decompress(row.body)
                doc: AccessList | AccessListDelta
                if row.kind == "snapshot":
                    doc = AccessList.model_validate_json(body)
                    apply_snapshot(store, doc, site, TZ, b"")
                else:
                    doc = AccessListDelta.model_validate_json(body)
                    apply_delta(store, doc, site, TZ)  # refuses a broken chain or a dangling row
                self.applied[site] = doc.version
                new.setdefault(site, []).append(doc)
        return new

    def assert_as_compiled(self, step: str) -> None:
        """The hub's view of each list and each door's store equal a full compile of the site
        (plan rows nobody uses may linger: they grant nothing)."""
        publisher = self.hub.publisher
        publisher._current.clear()  # rebuild the hub's view from what was recorded
        for site, store in self.stores.items():
            sent = publisher.current(site)
            assert sent is not None and sent.version == self.applied[site], (step, site)
            fresh = publisher.compiler.compile(site, sent.version)
            assert decides(sent) == decides(fresh), (step, site)
            with store.read() as conn:
                members = {
                    r[0]: bool(r[1]) for r in conn.execute("SELECT id, blocked FROM members")
                }
                cards = set(conn.execute("SELECT hash, member_id, revoked FROM cards"))
                grants = conn.execute("SELECT member_id, count(*) FROM grants GROUP BY member_id")
                per_member = dict(grants.fetchall())
            assert members == {m.id: m.blocked for m in fresh.members}, (step, site)
            assert cards == {(c.hash, c.member, int(c.revoked)) for c in fresh.cards}, (step, site)
            assert per_member == {m.id: len(m.grants) for m in fresh.members if m.grants}


def decides(doc: AccessList) -> dict:
    """What a door decides on: members with their grants, cards, and the plans grants use."""
    used = {g.plan for m in doc.members for g in m.grants if g.plan}
    return {
        "members": sorted(m.model_dump_json() for m in doc.members),
        "cards": sorted(c.model_dump_json() for c in doc.cards),
        "plans": sorted(p.model_dump_json() for p in doc.plans if p.id in used),
    }


def seed(hub: TestHub, api) -> None:
    for site in SITES:
        assert api.post("/sites", json={"id": site, "name": site}).status_code == 201
    for plan in (
        {"id": "flex"},
        {"id": "region", "sites": ["a-dorf", "b-stadt"]},
        {"id": "pendel", "sites": ["a-dorf"]},
    ):
        assert api.post("/plans", json=plan).status_code == 201
    companies = [
        {"id": "acme", "name": "Acme", "plan": "region", "sites": ["c-hafen"]},
        {"id": "beta", "name": "Beta", "sites": ["d-mark"]},
    ]
    for company in companies:
        assert api.put(f"/companies/{company['id']}", json=company).status_code == 200
    people = {
        "anna": ("flex", None),
        "ben": ("region", None),
        "cleo": (None, "acme"),
        "dora": ("pendel", "acme"),
        "emil": ("pendel", None),
        "fritz": (None, "beta"),
    }
    for i, (member, (plan_id, company_id)) in enumerate(people.items()):
        api.post("/members", json={"id": member, "name": member.title()})
        api.post(f"/members/{member}/cards", json={"uid": f"04{i:02X}B2C3D4E5F6"})
        if plan_id:
            api.post(f"/members/{member}/grants", json={"plan": plan_id})
        if company_id:
            api.put(f"/members/{member}/company", json={"company": company_id})


def run_at_once(changes: list) -> None:
    """Start every change in its own thread at the same moment; fail with every error."""
    start = threading.Barrier(len(changes))
    failures: list[BaseException] = []

    def run(change) -> None:
        start.wait()
        try:
            change()
        except BaseException as exc:  # reported below, with the others
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(change,)) for change in changes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not failures, failures
