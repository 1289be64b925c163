"""What a site's dashboard page shows, read in one go: the site, its doors, its air and its
recent door events (in words, and only about the doors for those who may not see people)."""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from hub.auth import Principal
from hub.services.events import DoorEvent, recent_events
from hub.services.fleet import DeviceStatus, site_devices
from hub.services.occupancy import air_now
from hub.services.sites import Site, visible_site


@dataclass(frozen=True)
class SitePage:
    site: Site
    zone: ZoneInfo
    devices: list[DeviceStatus]
    #: Each CO2 sensor's reading (None: the sensor failed) and what to do about the air.
    air: dict[str, tuple[int | None, str | None]]
    events: list[DoorEvent]


def site_page(engine: Engine, who: Principal, site: str) -> SitePage:
    """The page of a site ``who`` may see (NotFound for any other, or none at all)."""
    with engine.connect() as conn:
        found = visible_site(conn, who, site)
        return SitePage(
            site=found,
            zone=ZoneInfo(found.timezone),
            devices=site_devices(conn, site),
            air=air_now(conn, site),
            events=recent_events(conn, who, site),
        )
