"""A site's rooms, bookable by the hour: each holds at most ``seats`` people.

Staff who may see a site see its rooms; a network admin, and an operator at their own sites,
add, change and remove them (the same rule as the site's booking settings). A room that
bookings still to come hold is not removed, nor made smaller than one of them needs: the
refusal says how many hold it.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from hafen.ids import Slug
from hub import db
from hub.auth import Principal, Role
from hub.services.errors import Conflict, Invalid, NotFound
from hub.services.scope import Scope
from hub.services.site_booking import future_room_bookings
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
    engine: Engine, who: Principal, site: str, room: str, body: RoomIn
) -> tuple[Room, bool]:
    """Add the room, or change its name and seats; the room, and True if it is new."""
    _manage(who, site)
    r = db.rooms.c
    here = (r.site_id == site) & (r.id == room)
    with engine.begin() as conn:
        require_site_exists(conn, site)
        if conn.scalar(select(r.id).where(here).with_for_update()) is not None:
            _, most = future_room_bookings(conn, site, room)
            if most > body.seats:
                raise Conflict(
                    f"seats: a booking of room {room!r} still to come brings {most} people:"
                    f" keep at least {most} seats, or cancel it first"
                )
            conn.execute(update(db.rooms).where(here).values(name=body.name, seats=body.seats))
            return Room(id=room, **body.model_dump()), False
        rooms = conn.scalar(select(func.count()).select_from(db.rooms).where(r.site_id == site))
        if (rooms or 0) >= MAX_ROOMS:
            raise Invalid(f"a site has at most {MAX_ROOMS} rooms: remove one first")
        try:
            conn.execute(insert(db.rooms).values(site_id=site, id=room, **body.model_dump()))
        except IntegrityError:  # the same room, added by another request at the same time
            raise Conflict(f"room {room!r} was just added: try again") from None
    return Room(id=room, **body.model_dump()), True


def delete_room(engine: Engine, who: Principal, site: str, room: str) -> None:
    """Remove the room, unless bookings still to come hold it (Conflict: how many)."""
    _manage(who, site)
    r = db.rooms.c
    here = (r.site_id == site) & (r.id == room)
    with engine.begin() as conn:
        if conn.scalar(select(r.id).where(here).with_for_update()) is None:
            raise NotFound(f"no room {room!r} at site {site!r}")
        count, _ = future_room_bookings(conn, site, room)
        if count:
            held = "1 booking" if count == 1 else f"{count} bookings"
            raise Conflict(f"room {room!r}: {held} still to come hold it: cancel them first")
        conn.execute(delete(db.rooms).where(here))
