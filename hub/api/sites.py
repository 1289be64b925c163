"""Sites and their devices."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from hafen.acl import TimeWindow
from hafen.config import TimeZoneName
from hafen.ids import Slug
from hub import db
from hub.api.deps import Admin, Caller, Store, allow, require_site
from hub.auth import Principal, Role

router = APIRouter(prefix="/sites", tags=["sites"])


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
        if value == "acl":
            raise ValueError("'acl' is reserved")
        return value


class Device(DeviceIn):
    site: str
    created_at: datetime
    online: bool | None = None
    software: str | None = None
    acl_version: int | None = None
    last_seen: datetime | None = None


def _site(row) -> Site:
    return Site(
        id=row.id,
        name=row.name or row.id,
        district=row.district,
        timezone=row.timezone,
        capacity=row.capacity,
        opening_hours=row.opening_hours,
    )


@router.get("", response_model=list[Site])
def list_sites(store: Store, who: Caller) -> list[Site]:
    """The sites the caller may see (all of them for admins and technicians)."""
    with store.connect() as conn:
        rows = conn.execute(select(db.sites).order_by(db.sites.c.id)).all()
    if who.role == Role.SITE_OPERATOR:
        rows = [r for r in rows if r.id in who.sites]
    return [_site(r) for r in rows]


@router.post("", response_model=Site, status_code=status.HTTP_201_CREATED)
def create_site(site: SiteIn, store: Store, _: Admin) -> Site:
    values = site.model_dump(mode="json")
    try:
        with store.begin() as conn:
            conn.execute(insert(db.sites).values(**values))
    except IntegrityError:
        raise HTTPException(status.HTTP_409_CONFLICT, f"site {site.id!r} exists") from None
    return Site(**site.model_dump())


@router.get("/{site_id}", response_model=Site)
def get_site(site_id: str, store: Store, who: Caller) -> Site:
    require_site(who, site_id)
    with store.connect() as conn:
        row = conn.execute(select(db.sites).where(db.sites.c.id == site_id)).one_or_none()
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no site {site_id!r}")
    return _site(row)


Fleet = Annotated[
    Principal, Depends(allow(Role.NETWORK_ADMIN, Role.TECHNICIAN, Role.SITE_OPERATOR))
]


@router.get("/{site_id}/devices", response_model=list[Device])
def list_devices(site_id: str, store: Store, who: Fleet) -> list[Device]:
    require_site(who, site_id)
    d, s = db.devices.c, db.device_states.c
    with store.connect() as conn:
        rows = conn.execute(
            select(db.devices, s.online, s.software, s.acl_version, s.received_at)
            .outerjoin(db.device_states, (s.site == d.site) & (s.device == d.id))
            .where(d.site == site_id)
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


Installer = Annotated[Principal, Depends(allow(Role.NETWORK_ADMIN, Role.TECHNICIAN))]


@router.post("/{site_id}/devices", response_model=Device, status_code=status.HTTP_201_CREATED)
def add_device(site_id: str, device: DeviceIn, store: Store, _: Installer) -> Device:
    now = datetime.now(UTC)
    with store.begin() as conn:
        if conn.scalar(select(db.sites.c.id).where(db.sites.c.id == site_id)) is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no site {site_id!r}")
        exists = conn.scalar(
            select(db.devices.c.id).where(
                db.devices.c.site == site_id, db.devices.c.id == device.id
            )
        )
        if exists:
            raise HTTPException(status.HTTP_409_CONFLICT, f"device {device.id!r} exists")
        conn.execute(
            insert(db.devices).values(site=site_id, id=device.id, kind=device.kind, created_at=now)
        )
    return Device(id=device.id, kind=device.kind, site=site_id, created_at=now)
