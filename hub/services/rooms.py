"""A site's rooms, bookable by the hour: each holds at most ``seats`` people.

Staff who may see a site see its rooms; a network admin, and an operator at their own sites,
add, change and remove them (the same rule as the site's booking settings). A room that
bookings still to come hold is not removed, nor made smaller than one of them needs: the
refusal says how many hold it, unless the caller asks to cancel them: then they are
cancelled with the change and their members told (``site_booking``). A change takes the
site's lock first, as a booking of the room does (``booking_writes``): no booking slips in
between the count and the change.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection, Engine, delete, func, insert, select, update

from hafen.ids import Slug
from hub import db
from hub.access_lists import AclPublisher
from hub.auth import Principal, Role
from hub.services.booking_mail import Because
from hub.services.booking_writes import lock_site, writing
from hub.services.errors import Invalid, NotFound
from hub.services.freeing import Freed, tell_doors
from hub.services.scope import Scope
from hub.services.site_booking import REFUSE, OnAffected, bookings, room_affected, settle
from hub.services.sites import require_site_exists

#: Rooms one site may have: a small space has a few, a large one some dozens.
MAX_ROOMS = 100


class RoomIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=120)]
    seats: Annotated[int, Field(ge=1, le=500)]


class Room(RoomIn):
    id: Slug


def _manage(who: Principal, site: str) -> None:
    """Network admins at any site, operators at theirs (NotFound at another's); technicians
    look after devices, not bookings (Forbidden)."""
    scope = Scope(who)
    scope.require_role(Role.NETWORK_ADMIN, Role.SITE_OPERATOR)
    scope.require_site(site)


def list_rooms(engine: Engine, who: Principal, site: str) -> list[Room]:
    """The site's rooms, by id."""
    Scope(who).require_site(site)
    r = db.rooms.c
    with engine.connect() as conn:
        require_site_exists(conn, site)
        rows = conn.execute(select(r.id, r.name, r.seats).where(r.site_id == site).order_by(r.id))
        return [Room(id=row.id, name=row.name, seats=row.seats) for row in rows]


def put_room(
    engine: Engine,
    publisher: AclPublisher | None,
    who: Principal,
    site: str,
    room: str,
    body: RoomIn,
    on: OnAffected = REFUSE,
) -> tuple[Room, bool]:
    """Add the room, or change its name and seats; the room, and True if it is new. Fewer
    seats than a booking not over yet brings: refused, or those bookings cancelled
    (``site_booking.OnAffected``)."""
    _manage(who, site)
    r = db.rooms.c
    here = (r.site_id == site) & (r.id == room)
    with writing(engine), engine.begin() as conn:
        if not lock_site(conn, site):
            raise NotFound(f"no site {site!r}")
        if conn.scalar(select(r.id).where(here)) is not None:
            freed = _settle(conn, site, room, body.seats, on)
            conn.execute(update(db.rooms).where(here).values(name=body.name, seats=body.seats))
            created = False
        else:
            rooms = conn.scalar(select(func.count()).select_from(db.rooms).where(r.site_id == site))
            if (rooms or 0) >= MAX_ROOMS:
                raise Invalid(f"a site has at most {MAX_ROOMS} rooms: remove one first")
            conn.execute(insert(db.rooms).values(site_id=site, id=room, **body.model_dump()))
            freed, created = [], True
    tell_doors(publisher, freed)
    return Room(id=room, **body.model_dump()), created


def delete_room(
    engine: Engine,
    publisher: AclPublisher | None,
    who: Principal,
    site: str,
    room: str,
    on: OnAffected = REFUSE,
) -> None:
    """Remove the room: refused while bookings not over yet hold it, or those bookings
    cancelled (``site_booking.OnAffected``)."""
    _manage(who, site)
    r = db.rooms.c
    here = (r.site_id == site) & (r.id == room)
    with writing(engine), engine.begin() as conn:
        if not lock_site(conn, site) or conn.scalar(select(r.id).where(here)) is None:
            raise NotFound(f"no room {room!r} at site {site!r}")
        freed = _settle(conn, site, room, None, on)
        conn.execute(delete(db.rooms).where(here))
    tell_doors(publisher, freed)


def _settle(
    conn: Connection, site: str, room: str, seats: int | None, on: OnAffected
) -> list[Freed]:
    """Refuse, or cancel, the room's bookings that ``seats`` (None: removed) leave."""
    now = on.now or datetime.now(UTC)
    affected = room_affected(conn, site, room, seats, now)
    if seats is None:
        refusal = f"room {room!r}: removing it affects {bookings(len(affected))} of it"
    else:
        most = max((row.attendees or 1 for row in affected.rows()), default=0)
        refusal = (
            f"seats: {seats} seats affect {bookings(len(affected))} of room {room!r} that"
            f" bring up to {most} people; keep at least {most} seats"
        )
    because = Because(
        f"der Raum {room} ist entfernt worden oder hat weniger Plätze, als die Buchung braucht.",
        f"the room {room} was removed, or seats fewer than the booking brings.",
    )
    return settle(conn, affected, on, refusal, because, now)
