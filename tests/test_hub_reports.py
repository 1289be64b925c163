"""Roll-ups kept by ingest and the funders' monthly report, on SQLite and PostgreSQL.

Events go through the real ingest store (the worker's own write path); the report's figures are
checked against counts worked out by hand, and a rebuild from the raw rows must give the same
roll-ups as ingest kept incrementally.
"""

from __future__ import annotations

import csv
import io
import threading
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, select, update

from hub import db, privacy, reports, rollups
from hub.app import create_app
from hub.ingest.batch import Batch
from hub.ingest.store import IngestStore
from tests.support.events import sample, tap
from tests.support.hub import add_staff, as_user

BERLIN_NOV = datetime(2026, 11, 1, tzinfo=UTC) - timedelta(hours=1)  # local midnight, 1 Nov


@pytest.fixture
def store(engine):
    """The hub's store on each database, with the sites a, b and c, the company Acme and the
    members ann, bob (Acme's) and cyd."""
    with engine.begin() as conn:
        conn.execute(
            insert(db.sites),
            [{"id": s, "timezone": "Europe/Berlin", "name": s.title()} for s in ("a", "b", "c")],
        )
        conn.execute(insert(db.companies).values(id="acme", name="Acme"))
        conn.execute(
            insert(db.members),
            [
                {"id": "ann", "blocked": False, "company_id": None},
                {"id": "bob", "blocked": False, "company_id": "acme"},
                {"id": "cyd", "blocked": False, "company_id": None},
            ],
        )
    return engine


def _seed_month(ingest: IngestStore) -> None:
    """Ann: site a on 1 and 2 Nov (twice on the 1st), site b on the 3rd. Bob (Acme): site a on
    the 1st. Cyd: denied at a, and one tap at local 00:30 on 1 Dec (not November)."""
    day = BERLIN_NOV
    first = [
        tap("a", "ann", day + timedelta(hours=9)),
        tap("a", "ann", day + timedelta(hours=14)),
        tap("a", "bob", day + timedelta(hours=10)),
        tap("a", "cyd", day + timedelta(hours=11), allowed=False),
    ]
    ingest.write(Batch(events=first))
    # The same batch again (a redelivery), and later taps in a second batch.
    ingest.write(Batch(events=first))
    later = [
        tap("a", "ann", day + timedelta(days=1, hours=9)),
        tap("b", "ann", day + timedelta(days=2, hours=9)),
        tap("a", "cyd", datetime(2026, 11, 30, 23, 30, tzinfo=UTC)),
    ]
    ingest.write(Batch(events=later))
    ingest.write(Batch(events=[later[0]]))


def test_visits_are_counted_once_per_member_site_and_local_day(store):
    ingest = IngestStore(store)
    _seed_month(ingest)
    report = {r.site: r for r in reports.monthly_report(store, "2026-11")}
    a, b, c = report["a"], report["b"], report["c"]
    assert (a.visits, a.entries, a.unique_members) == (3, 4, 2)
    assert (a.multi_site_members, a.company_visits) == (1, 1)  # ann also at b; bob is Acme's
    assert (b.visits, b.entries, b.unique_members, b.multi_site_members) == (1, 1, 1, 1)
    assert (c.visits, c.unique_members) == (0, 0)
    december = {r.site: r for r in reports.monthly_report(store, "2026-12")}
    assert december["a"].visits == 1  # 23:30 UTC on 30 Nov is 1 Dec in Berlin
    with store.connect() as conn:
        day = conn.execute(
            select(db.visits).where(db.visits.c.member == "ann", db.visits.c.day == "2026-11-01")
        ).one()
    with store.connect() as conn:
        totals = conn.execute(select(db.site_days).order_by(db.site_days.c.day)).all()
    assert [(r.site, r.day, r.entries, r.visitors) for r in totals] == [
        ("a", "2026-11-01", 3, 2),
        ("a", "2026-11-02", 1, 1),
        ("b", "2026-11-03", 1, 1),
        ("a", "2026-12-01", 1, 1),
    ]
    assert db.aware(day.first_at) == BERLIN_NOV + timedelta(hours=9)
    assert db.aware(day.last_at) == BERLIN_NOV + timedelta(hours=14)
    assert day.entries == 2


def test_occupancy_figures_are_time_weighted_per_local_month(store):
    ingest = IngestStore(store)
    start = BERLIN_NOV + timedelta(days=4, hours=8)
    # 08:00-10:00 local: 2 people, then 4 for an hour, then empty; samples every 5 minutes.
    counts = [2] * 24 + [4] * 12 + [0] * 12
    events = [sample("a", start + timedelta(minutes=5 * i), n) for i, n in enumerate(counts)]
    ingest.write(Batch(events=events[:20]))
    ingest.write(Batch(events=events[20:]))
    ingest.write(Batch(events=events[10:30]))  # redelivered: changes nothing
    row = {r.site: r for r in reports.monthly_report(store, "2026-11")}["a"]
    assert row.occupied_hours == 3.0
    assert row.median_occupancy == 2.0  # hours with 2, 2 and 4 people
    assert row.peak_occupancy == 4
    assert row.covered_hours == 4.1  # 4 h, and the last sample holds 10 minutes: 4.08
    with store.connect() as conn:
        now = conn.execute(select(db.occupancy_now)).one()
    assert (now.site, now.count, db.aware(now.at)) == ("a", 0, events[-1]["at"])
    # A late sample in the middle is weighed in where it belongs.
    ingest.write(Batch(events=[sample("a", start + timedelta(minutes=2), 10)]))
    row = {r.site: r for r in reports.monthly_report(store, "2026-11")}["a"]
    assert row.peak_occupancy == 10


def test_a_rebuild_gives_the_roll_ups_ingest_kept(store):
    ingest = IngestStore(store)
    _seed_month(ingest)
    start = BERLIN_NOV + timedelta(days=6, hours=7, minutes=13)
    ingest.write(
        Batch(events=[sample("b", start + timedelta(minutes=7 * i), i % 5) for i in range(40)])
    )
    tables = (
        db.visits,
        db.member_months,
        db.occupancy_hours,
        db.occupancy_months,
        db.occupancy_now,
    )

    def snapshot() -> list:
        with store.connect() as conn:
            return [sorted(tuple(r) for r in conn.execute(select(t))) for t in tables]

    kept = snapshot()
    assert all(kept)
    assert not rollups.missing(store)
    with store.begin() as conn:
        rollups.clear(conn)  # as after an upgrade from before roll-ups
    assert rollups.missing(store)
    assert rollups.rebuild(store) == (7, 1)  # door decisions and devices read
    assert snapshot() == kept
    assert not rollups.missing(store)


def test_a_store_of_denials_only_is_not_taken_for_one_missing_its_roll_ups(store):
    ingest = IngestStore(store)
    ingest.write(Batch(events=[tap("a", None, BERLIN_NOV, allowed=False)]))
    assert not rollups.missing(store), "denials are no visits: nothing to roll up"
    ingest.write(Batch(events=[tap("a", "ann", BERLIN_NOV)]))
    with store.begin() as conn:
        rollups.clear(conn)
    assert rollups.missing(store)


def test_a_corrected_time_zone_reaches_a_running_worker(store, monkeypatch):
    monkeypatch.setattr(rollups, "ZONE_TTL", 0.0)
    ingest = IngestStore(store)
    late = datetime(2026, 11, 10, 23, 30, tzinfo=UTC)  # the 11th in Berlin, the 10th in NYC
    ingest.write(Batch(events=[tap("a", "ann", late)]))
    with store.begin() as conn:
        moved = update(db.sites).where(db.sites.c.id == "a").values(timezone="America/New_York")
        conn.execute(moved)
    ingest.write(Batch(events=[tap("a", "bob", late)]))
    with store.connect() as conn:
        days = dict(conn.execute(select(db.visits.c.member, db.visits.c.day)).all())
    assert str(days["ann"]) == "2026-11-11" and str(days["bob"]) == "2026-11-10"


def test_erasure_and_retention_pseudonymise_the_visit_roll_ups(store):
    ingest = IngestStore(store)
    _seed_month(ingest)
    before = {r.site: r for r in reports.monthly_report(store, "2026-11")}
    assert privacy.erase_member(store, "ann")
    privacy.pseudonymize_events(store, datetime(2026, 12, 1, tzinfo=UTC))
    with store.connect() as conn:
        left = set(conn.scalars(select(db.visits.c.member).distinct()))
        months = set(conn.scalars(select(db.member_months.c.member).distinct()))
    assert "ann" not in left | months
    assert "bob" not in left | months  # November is past retention
    assert "cyd" in left  # 1 December is not
    after = {r.site: r for r in reports.monthly_report(store, "2026-11")}
    assert after == before  # the figures still count everyone, without names


def test_the_report_api_serves_json_csv_and_only_the_callers_sites(store):
    ingest = IngestStore(store)
    _seed_month(ingest)
    add_staff(store, operator_sites=["a"])
    client = TestClient(create_app(store))
    admin, op, tech = as_user(client, "nadia"), as_user(client, "olga"), as_user(client, "tim")
    whole = client.get("/reports/monthly", params={"month": "2026-11"}, headers=admin).json()
    assert [s["site"] for s in whole["sites"]] == ["a", "b", "c"]
    assert "visits" in whole["definitions"]
    mine = client.get("/reports/monthly", params={"month": "2026-11"}, headers=op).json()
    assert [s["site"] for s in mine["sites"]] == ["a"]
    assert (
        client.get(
            "/reports/monthly", params={"month": "2026-11", "site": "b"}, headers=op
        ).status_code
        == 404
    )
    assert (
        client.get("/reports/monthly", params={"month": "2026-11"}, headers=tech).status_code == 403
    )
    assert (
        client.get("/reports/monthly", params={"month": "11/2026"}, headers=admin).status_code
        == 422
    )
    reply = client.get("/reports/monthly.csv", params={"month": "2026-11"}, headers=op)
    assert reply.headers["content-type"].startswith("text/csv")
    assert 'filename="hafen-network-2026-11.csv"' in reply.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(reply.text)))
    assert [(r["site"], r["visits"], r["unique_members"]) for r in rows] == [("a", "3", "2")]


def test_two_workers_at_once_count_every_event_exactly_once(store):
    """Two ingest workers (as a shared subscription makes them) store interleaved, partly
    redelivered batches of the same members, days and device at the same time."""
    start = BERLIN_NOV + timedelta(days=9, hours=8)
    taps = [tap("a", ("ann", "bob")[i % 2], start + timedelta(minutes=i)) for i in range(120)]
    samples = [sample("a", start + timedelta(minutes=i), i % 7) for i in range(120)]
    events = [e for pair in zip(taps, samples, strict=True) for e in pair]
    batches = [events[i : i + 8] for i in range(0, len(events), 8)]
    errors: list[Exception] = []

    def work(mine: list[list[dict]]) -> None:
        ingest = IngestStore(store)
        try:
            for batch in mine:
                ingest.write(Batch(events=batch))
        except Exception as exc:  # surfaced below
            errors.append(exc)

    # Each worker gets every other batch, and a third of the other's again (redeliveries).
    plans = [batches[0::2] + batches[1::6], batches[1::2] + batches[0::6]]
    workers = [threading.Thread(target=work, args=(plan,)) for plan in plans]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert not errors
    tables = (db.visits, db.site_days, db.member_months, db.occupancy_hours, db.occupancy_months)

    def snapshot() -> list:
        with store.connect() as conn:
            return [sorted(tuple(r) for r in conn.execute(select(t))) for t in tables]

    kept = snapshot()
    rollups.rebuild(store)
    assert snapshot() == kept
    with store.connect() as conn:
        day = conn.execute(select(db.site_days)).one()
    assert (day.entries, day.visitors) == (120, 2)


def test_the_csv_never_hands_a_spreadsheet_a_formula():
    rows = [
        reports.SiteMonth("a", '=HYPERLINK("http://evil.example","x")', "2026-10", visits=3),
        reports.SiteMonth("b", "-1+2", "2026-10"),
        reports.SiteMonth("c", "Hafen Nord", "2026-10", median_occupancy=-0.0),
    ]
    lines = reports.as_csv(rows).splitlines()
    assert lines[1].startswith("a,\"'=HYPERLINK(") and ",3," in lines[1]
    assert lines[2].startswith("b,'-1+2,")
    assert lines[3].startswith("c,Hafen Nord,") and ",-0.0," in lines[3], "numbers stay numbers"
