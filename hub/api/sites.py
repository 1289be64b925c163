"""Sites, their booking settings, rooms and devices."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response, status

from hafen.ids import SLUG_PATTERN
from hub.http.deps import Admin, Caller, Installer, SpacesFinder, Store
from hub.services import rooms, sites
from hub.services.rooms import Room, RoomIn
from hub.services.sites import Device, DeviceIn, Site, SiteIn, SitePatch

router = APIRouter(prefix="/sites", tags=["sites"])
RoomId = Annotated[str, Path(pattern=SLUG_PATTERN, description="the room's id: a-z, 0-9, _ -")]


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
    site_id: str, patch: SitePatch, store: Store, spaces: SpacesFinder, who: Caller
) -> Site:
    """Change the fields given: a network admin any but the id, a site's operator the booking
    settings of their own sites (hours, closed days, desks, horizon, cancel and grace
    minutes). A change that bookings still to come would no longer fit is a 409 naming
    them."""
    changed = sites.update_site(store, who, site_id, patch)
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
    spaces: SpacesFinder,
    who: Caller,
    response: Response,
) -> Room:
    """Add a room (201) or change its name and seats (200): network admins at any site,
    operators at theirs."""
    saved, created = rooms.put_room(store, who, site_id, room_id, room)
    spaces.clear()
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return saved


@router.delete("/{site_id}/rooms/{room_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_room(
    site_id: str, room_id: RoomId, store: Store, spaces: SpacesFinder, who: Caller
) -> None:
    """Remove a room; 409 while bookings still to come hold it (the answer says how many)."""
    rooms.delete_room(store, who, site_id, room_id)
    spaces.clear()


@router.get("/{site_id}/devices", response_model=list[Device])
def list_devices(site_id: str, store: Store, who: Caller) -> list[Device]:
    return sites.list_devices(store, who, site_id)


@router.post("/{site_id}/devices", response_model=Device, status_code=status.HTTP_201_CREATED)
def add_device(site_id: str, device: DeviceIn, store: Store, _: Installer) -> Device:
    return sites.add_device(store, site_id, device)
