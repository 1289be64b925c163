"""Never more desks or room seats than there are, under any concurrency: real threads book at
once through the booking service on SQLite and PostgreSQL, each in its own transaction on its
own connection of the hub's engine (the pool's row is locked before anything is counted).

On SQLite one hub process queues its own booking writers on a lock before the database's
(``bookings._writing``, for latency); these tests take it away, as for writers in separate
processes, so that what they show is the database's lock alone."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from datetime import date, datetime, timedelta
from functools import partial

import pytest
from sqlalchemy import Engine, event, func, insert, select

from hub import db
from hub.auth import Principal, Role
from hub.services import bookings
from hub.services.booking_models import MyBookingIn
from hub.services.booking_rules import Rule, RuleBroken
from hub.services.booking_writes import lock_site
from hub.services.bookings import Canceller
from hub.services.desk_pool import holding
from tests.support.booking import add_room, at, make_members, set_site, today

THREADS = 40


@pytest.fixture(autouse=True)
def writers_as_if_in_separate_processes(monkeypatch):
    monkeypatch.setattr(bookings, "_writing", lambda _engine: nullcontext())


def member(name: str) -> Principal:
    return Principal(1, name, Role.MEMBER, frozenset(), member_id=name)


def at_once(calls: list[Callable[[], object]]) -> Counter:
    """Run ``calls`` in as many threads, released together; count what each ended in (a
    booking, or the rule that refused it)."""
    start = threading.Barrier(len(calls))

    def run(call: Callable[[], object]) -> str:
        start.wait()
        try:
            call()
        except RuleBroken as refused:
            return refused.rule
        return "booked"

    with ThreadPoolExecutor(len(calls)) as threads:
        return Counter(threads.map(run, calls))


def site(engine: Engine, desks: int) -> None:
    with engine.begin() as conn:
        conn.execute(insert(db.sites).values(id="borna", timezone="Europe/Berlin"))
        conn.execute(insert(db.plans).values(id="flex"))
    set_site(engine, "borna", desks=desks)


def holding_desks(engine: Engine, day: date) -> int:
    b = db.bookings.c
    with engine.connect() as conn:
        query = select(func.count()).where(b.site_id == "borna", b.day == day, holding())
        return conn.scalar(query) or 0


def test_forty_members_at_once_for_the_last_three_desks_get_exactly_three(engine):
    site(engine, desks=10)
    day = today() + timedelta(days=3)
    early = [f"early-{i}" for i in range(7)]
    rush = [f"rush-{i}" for i in range(THREADS)]
    make_members(engine, early + rush, "flex")
    for name in early:
        bookings.book_for_self(engine, None, member(name), desk(day))
    outcome = at_once([partial(book_desk, engine, name, day) for name in rush])
    assert outcome == {"booked": 3, Rule.FULL: THREADS - 3}
    assert holding_desks(engine, day) == 10


def test_a_cancelled_desk_is_taken_by_exactly_one_of_many(engine):
    site(engine, desks=1)
    day = today() + timedelta(days=3)
    make_members(engine, ["first"] + [f"rush-{i}" for i in range(20)], "flex")
    made = bookings.book_for_self(engine, None, member("first"), desk(day))
    calls: list[Callable[[], object]] = [
        partial(book_desk, engine, f"rush-{i}", day) for i in range(20)
    ]
    calls.append(
        partial(bookings.cancel, engine, None, member("first"), made.id, by=Canceller.MEMBER)
    )
    outcome = at_once(calls)
    rush_booked = outcome["booked"] - 1  # the cancellation succeeds too
    assert rush_booked <= 1 and outcome[Rule.FULL] == 20 - rush_booked
    assert holding_desks(engine, day) == rush_booked


def test_twenty_bookings_at_once_of_one_room_at_one_time_give_it_to_one(engine):
    site(engine, desks=10)
    add_room(engine, "borna", "werkstatt", 6)
    day = today() + timedelta(days=3)
    names = [f"m-{i}" for i in range(20)]
    make_members(engine, names, "flex")
    room = MyBookingIn(
        site="borna",
        kind="room",
        room="werkstatt",
        starts_at=datetime.fromisoformat(at(day, "10:00")),
        ends_at=datetime.fromisoformat(at(day, "11:00")),
        attendees=6,
    )
    outcome = at_once(
        [partial(bookings.book_for_self, engine, None, member(name), room) for name in names]
    )
    assert outcome == {"booked": 1, Rule.ROOM_TAKEN: 19}


def test_one_member_booking_many_days_at_once_stays_within_the_months_allowance(engine):
    """Each day is another pool: the member's own row is what serialises them."""
    site(engine, desks=10)
    with engine.begin() as conn:
        conn.execute(insert(db.plans).values(id="two-days", days_per_month=2))
    make_members(engine, ["ida"], "two-days")
    first = today() + timedelta(days=1)
    if (first + timedelta(days=10)).month != first.month:
        first = (first.replace(day=1) + timedelta(days=32)).replace(day=1)
    days = [first + timedelta(days=i) for i in range(10)]
    outcome = at_once([partial(book_desk, engine, "ida", day) for day in days])
    assert outcome == {"booked": 2, Rule.DAYS_USED: 8}


def desk(day: date) -> MyBookingIn:
    return MyBookingIn(site="borna", kind="desk", day=day)


def book_desk(engine: Engine, name: str, day: date) -> object:
    return bookings.book_for_self(engine, None, member(name), desk(day))


def test_on_sqlite_the_pools_write_opens_each_bookings_transaction(tmp_path):
    """pysqlite opens its transaction (a deferred BEGIN) just before the first write and runs
    reads before it outside any: the pool's write must be that first write, so that the
    write lock is held before anything is counted and no read lock is ever upgraded (which
    could fail with SQLITE_BUSY instead of waiting)."""
    engine = db.connect(f"sqlite:///{tmp_path / 'hub.db'}")
    site(engine, desks=10)
    make_members(engine, ["mia"], "flex")
    opening: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _first_write(conn, _cursor, statement, *_args) -> None:
        reading = statement.lstrip().upper().startswith("SELECT")
        if not reading and not conn.connection.dbapi_connection.in_transaction:
            opening.append(statement.split("(")[0].strip())

    made = bookings.book_for_self(engine, None, member("mia"), desk(today() + timedelta(days=2)))
    bookings.cancel(engine, None, member("mia"), made.id, by=Canceller.MEMBER)
    assert opening == ["INSERT INTO booking_pools", "INSERT INTO booking_pools"]
    engine.dispose()


def test_a_booking_counts_against_the_desks_a_change_made_while_it_waited(engine):
    """Review found that a booking counted against the desks it read before its lock: an
    operator cutting the desks (counting the bookings they could see) and a booking at
    once left one booking more than desks. Here the cut is held open in a transaction
    while the booking starts; it must wait for it and then find no desk left."""
    site(engine, desks=10)
    day = today() + timedelta(days=3)
    names = [f"early-{i}" for i in range(5)] + ["late"]
    make_members(engine, names, "flex")
    for name in names[:5]:
        bookings.book_for_self(engine, None, member(name), desk(day))
    with engine.connect() as cutting:
        cutting.begin()
        # What update_site does: lock the row, see 5 booked, cut the desks to 5.
        lock_site(cutting, "borna")
        cutting.execute(db.sites.update().where(db.sites.c.id == "borna").values(desks=5))
        with ThreadPoolExecutor(1) as thread:
            late = thread.submit(bookings.book_for_self, engine, None, member("late"), desk(day))
            threading.Event().wait(0.5)  # the booking is under way, waiting for the cut
            assert not late.done()
            cutting.commit()
            with pytest.raises(RuleBroken) as refused:
                late.result(timeout=20)
    assert refused.value.rule == Rule.FULL
    assert holding_desks(engine, day) == 5


def room(day: date, attendees: int) -> MyBookingIn:
    return MyBookingIn.model_validate(
        {"site": "borna", "kind": "room", "room": "saal", "attendees": attendees}
        | {"starts_at": at(day, "10:00"), "ends_at": at(day, "11:00")}
    )


#: Changes of the site or its room, made while a booking waits, and what then refuses it.
CHANGES = {
    "room removed": (db.rooms.delete(), "room", Rule.NO_ROOM),
    "seats cut": (db.rooms.update().values(seats=2), "room", Rule.TOO_MANY_PEOPLE),
    "closed day": (None, "desk", Rule.CLOSED),
}


@pytest.mark.parametrize("change", CHANGES)
def test_a_booking_counts_against_a_change_of_its_site_or_room_made_while_it_waited(engine, change):
    """Review found that a room's change (and a site's hours) could race a booking: the
    booking checked the room and the day before its lock and inserted after the change
    had counted the bookings it could see. Here the change is held open, as rooms and
    sites make it (the site's row written first), while the booking starts: it must wait
    and then be refused by what the change made."""
    site(engine, desks=10)
    add_room(engine, "borna", "saal", 10)
    make_members(engine, ["mia"], "flex")
    day = today() + timedelta(days=3)
    statement, kind, rule = CHANGES[change]
    if statement is None:
        statement = db.sites.update().values(closed_days=[day.isoformat()])
    wanted = room(day, 4) if kind == "room" else desk(day)
    with engine.connect() as changing:
        changing.begin()
        lock_site(changing, "borna")
        changing.execute(statement)
        with ThreadPoolExecutor(1) as thread:
            late = thread.submit(bookings.book_for_self, engine, None, member("mia"), wanted)
            threading.Event().wait(0.5)  # the booking is under way, waiting for the change
            assert not late.done()
            changing.commit()
            with pytest.raises(RuleBroken) as refused:
                late.result(timeout=20)
    assert refused.value.rule == rule
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(db.bookings)) == 0
