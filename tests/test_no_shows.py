"""The tap is the check-in (issue 16), on SQLite and PostgreSQL: a booking nobody tapped in
for by its start plus the site's grace time is released and its desk is free again; a tap
(stored through ingest, as a door's decision) keeps it; a door that is offline, or just back
with its backlog of taps, holds the releases at its site; two sweepers at once release each
booking once. The clock is the sweep's ``now``: nothing sleeps."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, insert, select

from hub import db
from hub.services.no_shows import SETTLE, Sweep, sweep
from hub.sweeper import BookingSweeper
from tests.support.booking import (
    add_door,
    door_tap,
    make_members,
    member_user,
    set_door,
    set_site,
    today,
)
from tests.support.sites import add_sites
from tests.support.waiting import wait_for

GRACE = timedelta(minutes=60)  # the sites' default


@pytest.fixture
def borna(api):
    """Borna always open with 2 desks and one door, online for an hour; mia and ole on the
    network-wide plan. Returns (nadia's header, mia's, ole's)."""
    admin = add_sites(api)
    set_site(api.engine, "borna", desks=2)
    add_door(api.engine, "borna")
    assert api.post("/plans", json={"id": "flex"}, headers=admin).status_code == 201
    mia = member_user(api, "mia", admin, plan="flex")
    ole = member_user(api, "ole", admin, plan="flex")
    return admin, mia, ole


def desk(day, site="borna") -> dict:
    return {"site": site, "kind": "desk", "day": day.isoformat(), "part": "day"}


def book(api, who, day, site="borna") -> dict:
    made = api.post("/me/bookings", json=desk(day, site), headers=who)
    assert made.status_code == 201, made.text
    return made.json()


def starts(booking: dict) -> datetime:
    return datetime.fromisoformat(booking["starts_at"])


def mine(api, who, booking: dict) -> dict:
    answer = api.get(f"/me/bookings/{booking['id']}", headers=who)
    assert answer.status_code == 200
    return answer.json()


def test_a_booking_nobody_tapped_in_for_is_released_and_its_desk_is_free_again(api, borna):
    admin, mia, ole = borna
    day = today() + timedelta(days=2)
    set_site(api.engine, "borna", desks=1)
    booking = book(api, mia, day)
    assert api.post("/me/bookings", json=desk(day), headers=ole).status_code == 409
    due = starts(booking) + GRACE + SETTLE
    assert sweep(api.engine, None, now=due - timedelta(seconds=1)).released == []
    assert sweep(api.engine, None, now=due).released == [booking["id"]]
    released = mine(api, mia, booking)
    assert released["state"] == "released" and released["released"] is True
    assert datetime.fromisoformat(released["released_at"]) == due
    # The member sees it among their bookings; the door no longer lets them in for it.
    assert [b["state"] for b in api.get("/me/bookings", headers=mia).json()] == ["released"]
    with api.engine.connect() as conn:
        grants = conn.scalars(select(db.grants.c.booking_id).where(db.grants.c.source == "booking"))
        assert list(grants) == []
    # A second sweep finds nothing to release, and the desk is free again.
    assert sweep(api.engine, None, now=due + timedelta(minutes=1)).released == []
    assert api.post("/me/bookings", json=desk(day), headers=ole).status_code == 201
    # Cancelling a released booking changes nothing.
    cancelled = api.delete(f"/bookings/{booking['id']}", headers=admin).json()
    assert cancelled["state"] == "released"


def test_a_tap_by_the_grace_time_keeps_the_booking_and_one_after_the_release_does_not(api, borna):
    _admin, mia, ole = borna
    day = today() + timedelta(days=2)
    kept, lost = book(api, mia, day), book(api, ole, day)
    door_tap(api.engine, "mia", starts(kept) + GRACE - timedelta(minutes=1))
    due = starts(kept) + GRACE + SETTLE
    assert sweep(api.engine, None, now=due).released == [lost["id"]]
    door_tap(api.engine, "ole", due + timedelta(minutes=1))  # too late: the desk went back
    assert mine(api, mia, kept)["state"] == "arrived"
    assert mine(api, ole, lost)["state"] == "released"


def test_an_offline_door_holds_releases_until_it_is_back_and_its_taps_are_in(api, borna):
    _admin, mia, ole = borna
    day = today() + timedelta(days=2)
    kept, lost = book(api, mia, day), book(api, ole, day)
    due = starts(kept) + GRACE + SETTLE
    # The door lost its uplink before the booking began; mia taps in, the door lets her in
    # from its own list and keeps the tap.
    set_door(api.engine, "borna", online=False, heard=starts(kept) - timedelta(hours=1))
    offline = sweep(api.engine, None, now=due)
    assert (offline.released, offline.held, offline.held_sites) == ([], 2, ["borna"])
    # Back online: its state arrives before its backlog; the sweep waits for the backlog.
    back = due + timedelta(hours=1)
    set_door(api.engine, "borna", online=True, heard=back)
    assert sweep(api.engine, None, now=back + timedelta(seconds=30)).held == 2
    door_tap(api.engine, "mia", starts(kept) + timedelta(minutes=20))
    settled = sweep(api.engine, None, now=back + SETTLE)
    assert (settled.released, settled.held) == ([lost["id"]], 0)
    assert mine(api, mia, kept)["state"] == "arrived"


def test_a_door_that_never_reported_holds_and_a_site_without_a_door_releases_nothing(api, borna):
    _admin, mia, _ole = borna
    day = today() + timedelta(days=2)
    set_site(api.engine, "leipzig-ost", desks=2)  # a site without a door: nobody can tap
    at_borna, at_leipzig = book(api, mia, day), book(api, mia, day, "leipzig-ost")
    add_door(api.engine, "borna", device="door-2", online=None)
    done = sweep(api.engine, None, now=starts(at_borna) + GRACE + SETTLE)
    assert (done.released, done.held, done.doorless) == ([], 1, 1)
    assert mine(api, mia, at_borna)["state"] == mine(api, mia, at_leipzig)["state"] == "booked"


def test_two_sweepers_at_once_release_each_booking_once(api, borna):
    admin, _mia, _ole = borna
    day = today() + timedelta(days=2)
    people = [f"guest-{i}" for i in range(8)]
    set_site(api.engine, "borna", desks=len(people))
    make_members(api.engine, people, "flex")
    with api.engine.begin() as conn:
        for member in people:
            conn.execute(
                db.members.update()
                .where(db.members.c.id == member)
                .values(email=f"{member}@example.org")
            )
    made = []
    for member in people:
        wanted = {"member": member, "kind": "desk", "day": day.isoformat()}
        answer = api.post("/sites/borna/bookings", json=wanted, headers=admin)
        assert answer.status_code == 201, answer.text
        made.append(answer.json())
    due = starts(made[0]) + GRACE + SETTLE
    start = threading.Barrier(2)
    done: list[Sweep] = []

    def sweeper() -> None:
        start.wait()
        done.append(sweep(api.engine, None, now=due, sends_mail=True))

    threads = [threading.Thread(target=sweeper) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    first, second = (set(one.released) for one in done)
    assert first.isdisjoint(second)
    assert first | second == {b["id"] for b in made}
    with api.engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(db.mail_outbox)) == len(people)
        released = conn.scalar(select(func.count()).where(db.bookings.c.released_at.is_not(None)))
        assert released == len(people)
    assert sweep(api.engine, None, now=due + timedelta(minutes=1)).released == []


def test_the_hubs_sweeper_releases_by_itself_every_interval(api, borna):
    """The thread ``hafen hub serve`` runs (hub.sweeper), on the real clock: a booking that
    began three hours ago, untouched, is released without anyone asking."""
    now = datetime.now(UTC)
    with api.engine.begin() as conn:
        booking = conn.execute(
            insert(db.bookings)
            .returning(db.bookings.c.id)
            .values(
                member_id="mia",
                site_id="borna",
                kind="desk",
                part="day",
                day=now.date(),
                starts_at=now - timedelta(hours=3),
                ends_at=now + timedelta(hours=3),
                created_at=now - timedelta(days=1),
            )
        ).scalar_one()

    def released() -> bool:
        with api.engine.connect() as conn:
            b = db.bookings.c
            return conn.scalar(select(b.released_at).where(b.id == booking)) is not None

    sweeper = BookingSweeper(api.engine, None, sends_mail=False, every=0.05).start()
    try:
        assert wait_for(released, 10)
    finally:
        sweeper.stop()
