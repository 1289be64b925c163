"""Sites, their booking settings, rooms and devices."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from hafen.ids import SLUG_PATTERN
from hub.http.deps import Admin, Caller, Installer, Publisher, SendsMail, SpacesFinder, Store
from hub.services import rooms, sites
from hub.services.rooms import Room, RoomIn
from hub.services.site_booking import OnAffected
from hub.services.sites import Device, DeviceIn, Site, SiteIn, SitePatch

router = APIRouter(prefix="/sites", tags=["sites"])
RoomId = Annotated[str, Path(pattern=SLUG_PATTERN, description="the room's id: a-z, 0-9, _ -")]
CancelAffected = Annotated[
    bool,
    Query(
        description="Cancel the bookings not over yet that the change leaves (their members"
        " are told); without it, such a change is refused with 409 saying how many."
    ),
]


@router.get("", response_model=list[Site])
def list_sites(store: Store, who: Caller) -> list[Site]:
    """The sites the caller may see (all of them for admins and technicians)."""
    return sites.list_sites(store, who)


@router.post("", response_model=Site, status_code=status.HTTP_201_CREATED)
def create_site(site: SiteIn, store: Store, spaces: SpacesFinder, _: Admin) -> Site:
    made = sites.create_site(store, site)
    spaces.clear()
    return made


@router.get("/{site_id}", response_model=Site)
def get_site(site_id: str, store: Store, who: Caller) -> Site:
    return sites.get_site(store, who, site_id)


@router.patch("/{site_id}", response_model=Site)
def update_site(
    site_id: str,
    patch: SitePatch,
    store: Store,
    publisher: Publisher,
    spaces: SpacesFinder,
    who: Caller,
    sends_mail: SendsMail,
    cancel_affected: CancelAffected = False,
) -> Site:
    """Change the fields given: a network admin any but the id, a site's operator the booking
    settings of their own sites (hours, closed days, desks, horizon, cancel and grace
    minutes). A change of hours, closed days, time zone or desks that bookings not over yet
    would no longer fit is a 409 saying how many, unless ``cancel_affected``: then they are
    cancelled (with fewer desks, the latest made of a day first)."""
    on = OnAffected(cancel_affected, sends_mail)
    changed = sites.update_site(store, publisher, who, site_id, patch, on)
    spaces.clear()
    return changed


@router.get("/{site_id}/rooms", response_model=list[Room])
def list_rooms(site_id: str, store: Store, who: Caller) -> list[Room]:
    return rooms.list_rooms(store, who, site_id)


@router.put("/{site_id}/rooms/{room_id}", response_model=Room)
def put_room(
    site_id: str,
    room_id: RoomId,
    room: RoomIn,
    store: Store,
    publisher: Publisher,
    spaces: SpacesFinder,
    who: Caller,
    sends_mail: SendsMail,
    response: Response,
    cancel_affected: CancelAffected = False,
) -> Room:
    """Add a room (201) or change its name and seats (200): network admins at any site,
    operators at theirs. Fewer seats than a booking not over yet brings: 409, unless
    ``cancel_affected``."""
    on = OnAffected(cancel_affected, sends_mail)
    saved, created = rooms.put_room(store, publisher, who, site_id, room_id, room, on)
    spaces.clear()
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return saved


@router.delete("/{site_id}/rooms/{room_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_room(
    site_id: str,
    room_id: RoomId,
    store: Store,
    publisher: Publisher,
    spaces: SpacesFinder,
    who: Caller,
    sends_mail: SendsMail,
    cancel_affected: CancelAffected = False,
) -> None:
    """Remove a room; 409 while bookings not over yet hold it (the answer says how many),
    unless ``cancel_affected``."""
    on = OnAffected(cancel_affected, sends_mail)
    rooms.delete_room(store, publisher, who, site_id, room_id, on)
    spaces.clear()


@router.get("/{site_id}/devices", response_model=list[Device])
def list_devices(site_id: str, store: Store, who: Caller) -> list[Device]:
    return sites.list_devices(store, who, site_id)


@router.post("/{site_id}/devices", response_model=Device, status_code=status.HTTP_201_CREATED)
def add_device(site_id: str, device: DeviceIn, store: Store, _: Installer) -> Device:
    return sites.add_device(store, site_id, device)
