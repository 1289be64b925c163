"""The network's directory: sites and the devices installed at them."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import Connection, Engine, Row, insert, select
from sqlalchemy.exc import IntegrityError

from hafen.acl import TimeWindow
from hafen.config import TimeZoneName
from hafen.ids import Slug
from hub import db
from hub.auth import Principal
from hub.services.errors import Conflict, Invalid, NotFound
from hub.services.scope import Scope


class SiteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Slug
    name: Annotated[str, Field(min_length=1, max_length=120)]
    district: Annotated[str, Field(max_length=120)] | None = None
    timezone: TimeZoneName = "Europe/Berlin"
    capacity: Annotated[int, Field(ge=1, le=10_000)] | None = None
    opening_hours: list[TimeWindow] | None = None


class Site(SiteIn):
    pass


class DeviceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Slug
    kind: Annotated[str, Field(pattern=r"^(door|sensor)$")] = "door"

    @field_validator("id")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value == "acl":  # the site's access-list topic sits where a device's would
            raise ValueError("'acl' is reserved")
        return value


class Device(DeviceIn):
    site: str
    created_at: datetime
    online: bool | None = None
    software: str | None = None
    acl_version: int | None = None
    last_seen: datetime | None = None


def _site(row: Row) -> Site:
    return Site(
        id=row.id,
        name=row.name or row.id,
        district=row.district,
        timezone=row.timezone,
        capacity=row.capacity,
        opening_hours=row.opening_hours,
    )


def list_sites(engine: Engine, who: Principal) -> list[Site]:
    """The sites ``who`` may see (all of them for admins and technicians), by id."""
    with engine.connect() as conn:
        rows = conn.execute(select(db.sites).order_by(db.sites.c.id)).all()
    return [_site(r) for r in Scope(who).only_visible(rows, lambda r: r.id)]


def create_site(engine: Engine, site: SiteIn) -> Site:
    try:
        with engine.begin() as conn:
            conn.execute(insert(db.sites).values(**site.model_dump(mode="json")))
    except IntegrityError:
        raise Conflict(f"site {site.id!r} exists") from None
    return Site(**site.model_dump())


def visible_site(conn: Connection, who: Principal, site: str) -> Site:
    """The site, if ``who`` may see it; NotFound for one they may not see or none at all."""
    Scope(who).require_site(site)
    row = conn.execute(select(db.sites).where(db.sites.c.id == site)).one_or_none()
    if row is None:
        raise NotFound(f"no site {site!r}")
    return _site(row)


def get_site(engine: Engine, who: Principal, site: str) -> Site:
    with engine.connect() as conn:
        return visible_site(conn, who, site)


def site_zone(conn: Connection, who: Principal, site: str) -> ZoneInfo:
    """The time zone of a site whose people (presence, visits) ``who`` may see: Forbidden for
    technicians, NotFound for another operator's site or none at all."""
    Scope(who).require_people_at(site)
    zone = conn.scalar(select(db.sites.c.timezone).where(db.sites.c.id == site))
    if zone is None:
        raise NotFound(f"no site {site!r}")
    return ZoneInfo(zone)


def require_site_exists(conn: Connection, site: str) -> None:
    if conn.scalar(select(db.sites.c.id).where(db.sites.c.id == site)) is None:
        raise NotFound(f"no site {site!r}")


def require_sites(conn: Connection, sites: Iterable[str], field: str = "sites") -> None:
    """Refuse a list of sites that names one the network does not have: a plan or company
    naming a typo would reach nowhere and nobody would notice. The message names each and
    suggests the nearest existing site."""
    wanted = set(sites)
    if not wanted:
        return
    known = set(conn.scalars(select(db.sites.c.id).where(db.sites.c.id.in_(sorted(wanted)))))
    unknown = sorted(wanted - known)
    if not unknown:
        return
    every = list(conn.scalars(select(db.sites.c.id)))
    parts = []
    for site in unknown:
        near = difflib.get_close_matches(site, every, n=1)
        parts.append(f"{site!r}" + (f" (did you mean {near[0]!r}?)" if near else ""))
    raise Invalid(f"{field}: no site {', '.join(parts)}")


def list_devices(engine: Engine, who: Principal, site: str) -> list[Device]:
    """The site's devices with the state each reported last (None: never reported)."""
    Scope(who).require_site(site)
    d, s = db.devices.c, db.device_states.c
    with engine.connect() as conn:
        rows = conn.execute(
            select(db.devices, s.online, s.software, s.acl_version, s.received_at)
            .outerjoin(db.device_states, (s.site == d.site) & (s.device == d.id))
            .where(d.site == site)
            .order_by(d.id)
        ).all()
    return [
        Device(
            id=r.id,
            kind=r.kind,
            site=r.site,
            created_at=r.created_at,
            online=r.online,
            software=r.software,
            acl_version=r.acl_version,
            last_seen=r.received_at,
        )
        for r in rows
    ]


def add_device(engine: Engine, site: str, device: DeviceIn) -> Device:
    """Register a device at a site (before it is installed there)."""
    now = datetime.now(UTC)
    with engine.begin() as conn:
        require_site_exists(conn, site)
        exists = conn.scalar(
            select(db.devices.c.id).where(db.devices.c.site == site, db.devices.c.id == device.id)
        )
        if exists:
            raise Conflict(f"device {device.id!r} exists")
        conn.execute(
            insert(db.devices).values(site=site, id=device.id, kind=device.kind, created_at=now)
        )
    return Device(id=device.id, kind=device.kind, site=site, created_at=now)
