"""What the booking tests share: sites set up for booking (desks, hours, rooms), members who
sign in, and days relative to today in a site's zone (the tests run on any day, at any hour)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, delete, insert, update

from hub import db
from hub.auth import Role, create_user
from hub.ingest.batch import Batch
from hub.ingest.store import IngestStore
from hub.ingest_beats import beat
from tests.support.hub import PASSWORD, as_user

BERLIN = ZoneInfo("Europe/Berlin")
WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]


def set_site(engine: Engine, site: str, **rules: Any) -> None:
    """Change a site's booking rules in the store (desks, opening_hours, closed_days,
    horizon_days, cancel_minutes, timezone)."""
    with engine.begin() as conn:
        conn.execute(update(db.sites).where(db.sites.c.id == site).values(**rules))


def add_room(engine: Engine, site: str, room: str, seats: int) -> None:
    with engine.begin() as conn:
        conn.execute(insert(db.rooms).values(site_id=site, id=room, name=room.title(), seats=seats))


def today(zone: ZoneInfo = BERLIN) -> date:
    return datetime.now(zone).date()


def next_weekday(weekday: int, zone: ZoneInfo = BERLIN, after: int = 1) -> date:
    """The first day at least ``after`` days from today (in ``zone``) that is ``weekday``
    (0: Monday)."""
    day = today(zone) + timedelta(days=after)
    return day + timedelta(days=(weekday - day.weekday()) % 7)


def at(day: date, clock: str, zone: ZoneInfo = BERLIN) -> str:
    """``day`` at the local ``clock`` (HH:MM) in ``zone``, as ISO text with its offset."""
    hours, minutes = map(int, clock.split(":"))
    return datetime(day.year, day.month, day.day, hours, minutes, tzinfo=zone).isoformat()


def rest_of_today(zone: ZoneInfo = BERLIN) -> tuple[str, str]:
    """From a few minutes ago (not before local midnight) to the end of today, in ``zone``:
    a day guest's time that is neither over nor crosses into tomorrow."""
    now = datetime.now(UTC)
    midnight = datetime.combine(today(zone), datetime.min.time(), tzinfo=zone)
    start = max(now - timedelta(minutes=5), midnight.astimezone(UTC))
    end = (midnight + timedelta(days=1)).astimezone(UTC)
    return start.isoformat(), end.isoformat()


def member_user(
    client: Any,
    member: str,
    admin: dict[str, str],
    plan: str | None = None,
    company: str | None = None,
    role: Role = Role.MEMBER,
    email: str | None = None,
) -> dict[str, str]:
    """A member made through the API (on ``plan`` or on ``company``'s staff; with ``email``
    if given), with a user who signs in as them; returns their header."""
    body = {"id": member, "name": member.title()} | ({"email": email} if email else {})
    answer = client.post("/members", json=body, headers=admin)
    assert answer.status_code == 201, answer.text
    if plan is not None:
        granted = client.post(f"/members/{member}/grants", json={"plan": plan}, headers=admin)
        assert granted.status_code == 201, granted.text
    if company is not None:
        employed = client.put(
            f"/members/{member}/company", json={"company": company}, headers=admin
        )
        assert employed.status_code == 200, employed.text
    looks_after = company if role == Role.COMPANY_ADMIN else None
    create_user(client.engine, member, PASSWORD, role, member_id=member, company_id=looks_after)
    return as_user(client, member)


def make_members(engine: Engine, members: Sequence[str], plan: str) -> None:
    """Members on ``plan`` straight in the store (many at once, for the concurrency tests)."""
    with engine.begin() as conn:
        conn.execute(insert(db.members), [{"id": m, "blocked": False} for m in members])
        conn.execute(
            insert(db.grants),
            [{"member_id": m, "plan_id": plan, "source": "plan"} for m in members],
        )


def add_door(
    engine: Engine,
    site: str,
    device: str = "door-1",
    online: bool | None = True,
    heard: datetime | None = None,
) -> None:
    """A door of ``site`` registered at the hub, and the state ingest last stored of it:
    ``online`` (None: it never reported), received ``heard`` (default: an hour ago); and
    ingest listening throughout, as in a running hub (``ingest_listening``)."""
    heard = heard or datetime.now(UTC) - timedelta(hours=1)
    with engine.begin() as conn:
        conn.execute(insert(db.devices).values(site=site, id=device, kind="door", created_at=heard))
    if online is not None:
        set_door(engine, site, online, heard, device)
    ingest_listening(engine)


#: The sweep's clock in these tests runs days ahead of the wall clock: a worker listening
#: throughout beats "at" any of its moments.
ALWAYS = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))


def ingest_listening(
    engine: Engine, name: str = "1", up_since: datetime = ALWAYS[0], beat_at: datetime = ALWAYS[1]
) -> None:
    """Ingest worker ``name``'s row (hub.ingest_beats) as it writes it: connected since
    ``up_since``, last beat ``beat_at``; by default listening throughout."""
    beat(engine, name, up_since, beat_at)


def set_door(
    engine: Engine, site: str, online: bool, heard: datetime, device: str = "door-1"
) -> None:
    """The door's state as ingest stores it when the door (or its will) reports."""
    s = db.device_states.c
    with engine.begin() as conn:
        conn.execute(delete(db.device_states).where(s.site == site, s.device == device))
        conn.execute(
            insert(db.device_states).values(
                site=site, device=device, online=online, session=1, received_at=heard
            )
        )


_taps = iter(range(1, 10**9))


def door_tap(engine: Engine, member: str, at: datetime, site: str = "borna") -> None:
    """A door's allowed entry of ``member`` at ``at``, stored through ingest's own path as it
    stores a door's decision (which marks the member's booking arrived, hub.arrivals)."""
    event = {
        "event_id": os.urandom(16).hex(),
        "site": site,
        "device": "door-1",
        "epoch": "00000000000000aa",
        "seq": next(_taps),
        "kind": "door.decision",
        "at": at,
        "data": {"card": "ab" * 16, "allowed": True, "member": member},
        "received_at": datetime.now(UTC),
    }
    IngestStore(engine).write(Batch(events=[event]))
