"""Door events, searched and described, and commands to doors (a remote unlock).

Who may read what: network admins every event; site operators their sites' events;
technicians none through the search (events name members), and on a site's page only the
events about the doors themselves (alarms, faults, refused lists), never who came or went.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from sqlalchemy import Connection, Engine, Row, select

from hafen.protocol import EventKind
from hub import db
from hub.access_lists import AclPublisher
from hub.auth import Principal
from hub.commands import command_message
from hub.services.errors import NotFound, Unavailable
from hub.services.members import own_members
from hub.services.scope import Scope

#: What a technician sees of a door's history: its own state and faults, never who came or went.
DEVICE_KINDS = tuple(
    k.value
    for k in (
        EventKind.DOOR_ALARM,
        EventKind.DEVICE_FAULT,
        EventKind.ACL_REFUSED,
        EventKind.SELFTEST,
    )
)


class Event(BaseModel):
    id: int
    event_id: str
    site: str
    device: str
    seq: int
    kind: str
    #: Always with its offset (UTC): SQLite gives the stored instant back without one.
    at: Annotated[datetime, AfterValidator(db.aware)]
    data: dict[str, Any]


@dataclass(frozen=True)
class DoorEvent:
    """An event in words, for people reading a site's recent history."""

    at: datetime
    device: str
    what: str
    outcome: str  # ok, denied, alarm, fault, info
    who: str | None


class UnlockIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seconds: Annotated[float, Field(ge=1, le=3600)] = 5.0


def search_events(
    engine: Engine,
    who: Principal,
    *,
    site: str | None = None,
    device: str | None = None,
    kind: str | None = None,
    member: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[Event]:
    """Door events, newest first, in pages of ``limit`` (the next from ``before_id``)."""
    scope = Scope(who)
    scope.require_people()
    e = db.events.c
    query = select(*(c for c in db.events.c if c.name != "member")).order_by(e.id.desc())
    query = query.limit(limit)
    if site is not None:
        scope.require_site(site)
        query = query.where(e.site == site)
    elif scope.sites is not None:
        query = query.where(e.site.in_(sorted(scope.sites)))
    for column, value in ((e.device, device), (e.kind, kind), (e.member, member)):
        if value is not None:
            query = query.where(column == value)
    # As instants: SQLite compares the stored UTC wall-clock text, so any other offset (or
    # none, read as UTC) goes to UTC first; PostgreSQL would read a naive time in its zone.
    if since is not None:
        query = query.where(e.at >= db.aware(since).astimezone(UTC))
    if until is not None:
        query = query.where(e.at < db.aware(until).astimezone(UTC))
    if before_id is not None:
        query = query.where(e.id < before_id)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [Event.model_validate(row._asdict()) for row in rows]


def recent_events(conn: Connection, who: Principal, site: str, limit: int = 15) -> list[DoorEvent]:
    """The site's newest door events in words: members named (never a card) for those who
    may see people, another site's member by id alone for an operator (``own_members``);
    for technicians only the events about the doors themselves."""
    people = Scope(who).sees_people
    e, m = db.events.c, db.members.c
    query = (
        select(e.at, e.device, e.kind, e.data, e.member, m.name)
        .outerjoin(db.members, m.id == e.member)
        .where(e.site == site)
        .order_by(e.id.desc())
        .limit(limit)
    )
    if not people:
        query = query.where(e.kind.in_(DEVICE_KINDS))
    rows = conn.execute(query).all()
    named = own_members(conn, Scope(who), {r.member for r in rows if r.member}) if people else set()
    return [_describe(r, people, r.member in named) for r in rows]


def _describe(row: Row, people: bool, named: bool) -> DoorEvent:
    data, kind = row.data, row.kind
    who = ((row.name if named else None) or row.member) if people and row.member else None
    if kind == "door.decision":
        if data.get("allowed"):
            what, outcome = "entry", "ok"
        else:
            what, outcome = f"denied: {data.get('reason') or 'unknown'}".replace("_", " "), "denied"
    elif kind == "door.alarm":
        what = f"{data.get('alarm', '').replace('_', ' ')} {data.get('state', '')}".strip()
        outcome = "alarm" if data.get("state") == "raised" else "info"
    elif kind == "device.fault":
        broken = data.get("fault")
        what = f"{data.get('component')}: {broken or 'recovered'}"
        outcome = "fault" if broken else "info"
    elif kind == "device.selftest":
        failed = [c.get("name") for c in data.get("checks", []) if c.get("outcome") == "fail"]
        what = f"self-test failed: {', '.join(map(str, failed))}" if failed else "self-test passed"
        outcome = "fault" if failed or not data.get("passed") else "ok"
    else:
        what, outcome = {
            "door.exit": ("exit button", "info"),
            "door.remote_unlock": ("remote unlock", "info"),
            "acl.refused": ("access list refused", "fault"),
        }.get(kind, (kind, "info"))
    return DoorEvent(db.aware(row.at), row.device, what, outcome, who)


def unlock(
    engine: Engine,
    publisher: AclPublisher | None,
    who: Principal,
    site: str,
    device: str,
    seconds: float,
) -> str:
    """Unlock a door from afar (letting a day guest in) with a sealed command; the door
    records it and replies. Returns the command's id."""
    Scope(who).require_people_at(site)
    with engine.connect() as conn:
        known = conn.scalar(
            select(db.devices.c.id).where(db.devices.c.site == site, db.devices.c.id == device)
        )
    if known is None:
        raise NotFound(f"no device {device!r} at {site!r}")
    if publisher is None:
        raise Unavailable("the hub has no broker")
    topic, payload, command_id = command_message(
        publisher.key, site, device, "unlock", {"seconds": seconds}
    )
    try:
        publisher.send(topic, payload, retain=False)
    except (TimeoutError, RuntimeError, ValueError):
        raise Unavailable("the broker is not reachable; try again") from None
    return command_id
