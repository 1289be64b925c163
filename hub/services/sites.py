"""The network's directory: sites, where they are and what they let book, and the devices
installed at them.

A site's booking settings (its place, desks, closed days and rules) are set when it is made
and changed with ``update_site``: a network admin may change anything but the id, a site's
operator only what runs the bookings of their own sites (``OPERATOR_FIELDS``).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Annotated, Any, Self
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from sqlalchemy import Connection, Engine, Row, insert, select, update
from sqlalchemy.exc import IntegrityError

from hafen.acl import TimeWindow
from hafen.config import TimeZoneName
from hafen.ids import Slug
from hub import db
from hub.access_lists import AclPublisher
from hub.auth import Principal, Role
from hub.services.booking_mail import Because
from hub.services.booking_writes import lock_site, writing
from hub.services.errors import Conflict, Forbidden, Invalid, NotFound
from hub.services.freeing import tell_doors
from hub.services.scope import Scope
from hub.services.site_booking import REFUSE, OnAffected, settle, site_change, site_refusal

#: Closed days one site may list: a year of holidays and works fits many times over.
MAX_CLOSED_DAYS = 400
#: Weekly opening windows one site may list (one a weekday, split by lunch, is 14).
MAX_WINDOWS = 50
#: What a site's operator may change of their own sites: what runs its bookings. Where the
#: site is, what it is called and its time zone are the network's directory (the admin's).
OPERATOR_FIELDS = frozenset(
    {"opening_hours", "closed_days", "desks", "horizon_days", "cancel_minutes", "grace_minutes"}
)
#: Settings a patch may not set to null: they always have a value.
_REQUIRED = ("name", "timezone", "horizon_days", "cancel_minutes", "grace_minutes")
_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _iso_day(value: object) -> object:
    """A closed day as ``YYYY-MM-DD`` only: pydantic would take a number of seconds too."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _ISO_DAY.match(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError(f"{str(value)[:40]!r} is not a day written YYYY-MM-DD, e.g. 2026-12-24")


def _sorted_days(days: list[date]) -> list[date]:
    """Closed days without repeats, in order: the list an operator reads back."""
    return sorted(set(days))


IsoDay = Annotated[date, BeforeValidator(_iso_day)]
ClosedDays = Annotated[
    list[IsoDay], Field(max_length=MAX_CLOSED_DAYS), AfterValidator(_sorted_days)
]
Latitude = Annotated[float, Field(ge=-90, le=90)]
Longitude = Annotated[float, Field(ge=-180, le=180)]
Address = Annotated[str, Field(min_length=1, max_length=300)]
Desks = Annotated[int, Field(ge=0, le=10_000)]
Windows = Annotated[list[TimeWindow], Field(max_length=MAX_WINDOWS)]


def _some_window(windows: list[TimeWindow]) -> list[TimeWindow]:
    if not windows:
        raise ValueError("give at least one window, or null: doors may update any time")
    return windows


#: When a site's doors may be ordered to update (issue 17): weekly windows as the opening
#: hours, in the site's time zone; None (null): any time. Empty would never open.
UpdateWindow = Annotated[Windows, AfterValidator(_some_window)]
#: How many days ahead a desk may be booked (two years at most).
HorizonDays = Annotated[int, Field(ge=1, le=730)]
#: Minutes before its start until which a booking may be cancelled (a week at most).
CancelMinutes = Annotated[int, Field(ge=0, le=10_080)]
#: Minutes after its start that a booking nobody tapped in for is kept (5 minutes to 12 hours).
GraceMinutes = Annotated[int, Field(ge=5, le=720)]


def check_consistent(site: SiteIn) -> None:
    """What no single field can check: a place has both coordinates, and a site has no more
    desks than people it may hold."""
    if (site.latitude is None) != (site.longitude is None):
        raise ValueError("latitude and longitude: give both (the site's place) or neither")
    if site.desks is not None and site.capacity is not None and site.desks > site.capacity:
        raise ValueError(
            f"desks: {site.desks} is more than the site's capacity of {site.capacity} people"
        )


class SiteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Slug
    name: Annotated[str, Field(min_length=1, max_length=120)]
    district: Annotated[str, Field(max_length=120)] | None = None
    timezone: TimeZoneName = "Europe/Berlin"
    capacity: Annotated[int, Field(ge=1, le=10_000)] | None = None
    #: Weekly windows in the site's time zone; None: always open.
    opening_hours: Windows | None = None
    #: When its doors may be ordered to update (outside opening hours, say); None: any time.
    update_window: UpdateWindow | None = None
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    address: Address | None = None
    #: Bookable desks; None: the site takes no desk bookings.
    desks: Desks | None = None
    #: Days the site stays shut whatever its hours say (holidays), in order.
    closed_days: ClosedDays | None = None
    horizon_days: HorizonDays = 60
    cancel_minutes: CancelMinutes = 60
    grace_minutes: GraceMinutes = 60

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        check_consistent(self)
        return self


class Site(SiteIn):
    pass


class SitePatch(BaseModel):
    """A change to a site: the fields given are set (null clears one that may be empty), the
    others stay as they are."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=120)] | None = None
    district: Annotated[str, Field(max_length=120)] | None = None
    timezone: TimeZoneName | None = None
    capacity: Annotated[int, Field(ge=1, le=10_000)] | None = None
    opening_hours: Windows | None = None
    update_window: UpdateWindow | None = None
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    address: Address | None = None
    desks: Desks | None = None
    closed_days: ClosedDays | None = None
    horizon_days: HorizonDays | None = None
    cancel_minutes: CancelMinutes | None = None
    grace_minutes: GraceMinutes | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_new_id(cls, data: Any) -> Any:
        if isinstance(data, dict) and "id" in data:
            raise ValueError(
                "id: a site's id cannot change (its doors' certificates and topics carry it);"
                " make a new site instead"
            )
        return data

    @model_validator(mode="after")
    def _no_nulls(self) -> Self:
        for name in _REQUIRED:
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name}: cannot be null; leave it out to keep it as it is")
        return self


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


def site_from_row(row: Row) -> Site:
    """A row of the sites table as a site."""
    return Site(
        id=row.id,
        name=row.name or row.id,
        district=row.district,
        timezone=row.timezone,
        capacity=row.capacity,
        opening_hours=row.opening_hours,
        update_window=row.update_window,
        latitude=row.latitude,
        longitude=row.longitude,
        address=row.address,
        desks=row.desks,
        closed_days=row.closed_days,
        horizon_days=row.horizon_days,
        cancel_minutes=row.cancel_minutes,
        grace_minutes=row.grace_minutes,
    )


def list_sites(engine: Engine, who: Principal) -> list[Site]:
    """The sites ``who`` may see (all of them for admins and technicians), by id."""
    with engine.connect() as conn:
        rows = conn.execute(select(db.sites).order_by(db.sites.c.id)).all()
    return [site_from_row(r) for r in Scope(who).only_visible(rows, lambda r: r.id)]


def create_site(engine: Engine, site: SiteIn) -> Site:
    try:
        with engine.begin() as conn:
            conn.execute(insert(db.sites).values(**site.model_dump(mode="json")))
    except IntegrityError:
        raise Conflict(f"site {site.id!r} exists") from None
    return Site(**site.model_dump())


def update_site(
    engine: Engine,
    publisher: AclPublisher | None,
    who: Principal,
    site: str,
    patch: SitePatch,
    on: OnAffected = REFUSE,
) -> Site:
    """Change the fields ``patch`` gives, checked together with the ones it leaves (desks
    against the capacity, both coordinates): a network admin any site, an operator the booking
    settings (``OPERATOR_FIELDS``) of their own. A change of the hours, closed days, zone or
    desks that bookings not over yet would no longer fit is a Conflict saying how many,
    unless ``on`` says to cancel them: then they are cancelled with the change, and their
    members told by mail; with fewer desks, the latest made of a day go first
    (``site_booking``). Under the site's lock: no booking slips in between."""
    scope = Scope(who)
    scope.require_role(Role.NETWORK_ADMIN, Role.SITE_OPERATOR)
    scope.require_site(site)
    given = patch.model_fields_set
    if who.role != Role.NETWORK_ADMIN and given - OPERATOR_FIELDS:
        mine, theirs = sorted(OPERATOR_FIELDS), sorted(given - OPERATOR_FIELDS)
        raise Forbidden(
            f"a site's operator changes its booking settings ({', '.join(mine)});"
            f" {', '.join(theirs)}: ask a network admin"
        )
    now = on.now or datetime.now(UTC)
    with writing(engine), engine.begin() as conn:
        if not lock_site(conn, site):
            raise NotFound(f"no site {site!r}")
        before = site_from_row(conn.execute(select(db.sites).where(db.sites.c.id == site)).one())
        try:
            after = Site.model_validate(before.model_dump() | patch.model_dump(include=given))
        except ValidationError as exc:
            raise Invalid(describe(exc)) from None
        affected = site_change(conn, before, after, now)
        because = Because(
            f"Die Öffnungszeiten, Schließtage oder Plätze von {after.name} haben sich geändert.",
            f"the opening hours, closed days or desks of {after.name} changed.",
        )
        refusal = site_refusal(affected, after.desks) if affected else ""
        freed = settle(conn, affected, on, refusal, because, now)
        if given:
            changes = after.model_dump(mode="json", include=given)
            conn.execute(update(db.sites).where(db.sites.c.id == site).values(**changes))
    tell_doors(publisher, freed)
    return after


def describe(error: ValidationError) -> str:
    """A validation error as one line per problem, each naming its field."""
    lines = []
    for problem in error.errors():
        message = problem["msg"].removeprefix("Value error, ")
        where = ".".join(str(part) for part in problem["loc"])
        lines.append(f"{where}: {message}" if where else message)
    return "; ".join(lines)


def visible_site(conn: Connection, who: Principal, site: str) -> Site:
    """The site, if ``who`` may see it; NotFound for one they may not see or none at all."""
    Scope(who).require_site(site)
    row = conn.execute(select(db.sites).where(db.sites.c.id == site)).one_or_none()
    if row is None:
        raise NotFound(f"no site {site!r}")
    return site_from_row(row)


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
