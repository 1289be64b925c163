"""The two sites of tests.support.sites made bookable where members can find them: an
address with a postcode and a place on the map each, desks, and a room at Borna."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from tests.support.booking import add_room, set_site

#: Where each site is: Borna is the nearer to 04552 (Borna's postcode).
PLACES: dict[str, dict[str, Any]] = {
    "borna": {"address": "Markt 1, 04552 Borna", "latitude": 51.1227, "longitude": 12.4966},
    "leipzig-ost": {
        "address": "Eisenbahnstraße 1, 04315 Leipzig",
        "latitude": 51.3456,
        "longitude": 12.4101,
    },
}


def bookable_sites(engine: Engine, desks: int = 2) -> None:
    """Give each site its place and ``desks`` (open all day, every day), and Borna a room
    for 6 (``studio``)."""
    for site, place in PLACES.items():
        set_site(engine, site, desks=desks, **place)
    add_room(engine, "borna", "studio", 6)
