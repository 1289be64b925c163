"""The tap is the check-in (issue 16): an allowed entry stored by ingest marks the member's
booking at that site as arrived, at the time of the tap, once; refusals, other sites, other
members and taps outside the booking's time do not. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select, update

from hub import db
from hub.arrivals import EARLY
from hub.ingest.batch import Batch
from hub.ingest.store import IngestStore
from tests.support import events

START = datetime(2026, 12, 8, 8, tzinfo=UTC)
END = START + timedelta(hours=10)


def tap(at: datetime, member: str = "anna", site: str = "borna", allowed: bool = True) -> dict:
    return events.tap(site, member, at, allowed)


def book(engine, member: str = "anna", site: str = "borna", **values) -> int:
    with engine.begin() as conn:
        return conn.execute(
            insert(db.bookings)
            .returning(db.bookings.c.id)
            .values(
                member_id=member,
                site_id=site,
                kind="desk",
                part="day",
                day=START.date(),
                starts_at=START,
                ends_at=END,
                created_at=START - timedelta(days=1),
                **values,
            )
        ).scalar_one()


def arrived(engine, booking: int) -> datetime | None:
    with engine.connect() as conn:
        return db.aware(
            conn.scalar(select(db.bookings.c.arrived_at).where(db.bookings.c.id == booking))
        )


def test_a_tap_at_the_site_in_the_bookings_time_is_its_arrival(engine):
    booking = book(engine)
    other_site, other_member = book(engine, site="wurzen"), book(engine, "bo")
    at = START + timedelta(minutes=20)
    IngestStore(engine).write(Batch(events=[tap(at)]))
    assert arrived(engine, booking) == at
    assert arrived(engine, other_site) is None and arrived(engine, other_member) is None


def test_refusals_and_taps_outside_the_bookings_time_are_no_arrival(engine):
    booking = book(engine)
    store = IngestStore(engine)
    store.write(Batch(events=[tap(START + timedelta(minutes=5), allowed=False)]))
    store.write(Batch(events=[tap(START - EARLY - timedelta(minutes=1))]))  # too early
    store.write(Batch(events=[tap(END)]))  # over
    assert arrived(engine, booking) is None
    early = START - EARLY + timedelta(minutes=1)
    store.write(Batch(events=[tap(early)]))  # an early bird
    assert arrived(engine, booking) == early


def test_a_late_delivered_earlier_tap_moves_the_arrival_back_and_a_redelivery_changes_nothing(
    engine,
):
    booking = book(engine)
    store = IngestStore(engine)
    later, earlier = tap(START + timedelta(hours=2)), tap(START + timedelta(minutes=30))
    store.write(Batch(events=[later]))
    store.write(Batch(events=[earlier]))  # a door's backlog after it was offline
    assert arrived(engine, booking) == START + timedelta(minutes=30)
    store.write(Batch(events=[later]))
    assert arrived(engine, booking) == START + timedelta(minutes=30)


def test_cancelled_or_released_bookings_are_not_arrived_at(engine):
    cancelled, released = book(engine), book(engine)
    with engine.begin() as conn:
        b = db.bookings.c
        conn.execute(update(db.bookings).where(b.id == cancelled).values(cancelled_at=START))
        conn.execute(update(db.bookings).where(b.id == released).values(released_at=START))
    IngestStore(engine).write(Batch(events=[tap(START + timedelta(minutes=1))]))
    assert arrived(engine, cancelled) is None and arrived(engine, released) is None
