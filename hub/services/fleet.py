"""The fleet: every device, whether it is online, when it was last heard from, how far behind
its site's newest access list it is, and what should worry whoever looks after it.

The worries (issue 13): a door is *unverified* while its own state has not shown a list of
its site published more than a bound ago (hub.list_acks: the hub cannot tell it enforces a
block); its session taken over by another connection with its client id; its components'
current faults; and states the hub refused because they did not carry the door's proof
(someone else on the broker speaks as the door). Beside them, each device's last self-test on
site (``hafen edge selftest``): when, whether it passed, which checks failed; and its identity:
when it last enrolled, and whether it was revoked since (hub.services.enrolment, .revocation).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, computed_field
from sqlalchemy import Connection, Engine, select

from hafen.protocol import EventKind, SelfTest
from hub import db
from hub.access_compiler import newest_versions
from hub.auth import Principal
from hub.list_acks import DOOR, UNVERIFIED_AFTER, required_versions, unverified
from hub.services.errors import NotFound
from hub.services.renewal import certificate_expiry
from hub.services.scope import Scope

#: A certificate with less than this left should have been renewed (doors ask with 30 days).
RENEWAL_OVERDUE = timedelta(days=20)
#: Reported after this long without a list shown in the door's state (for the pages' words).
UNVERIFIED_SECONDS = int(UNVERIFIED_AFTER.total_seconds())
#: How far back the fleet looks for a device's last self-test. The events table has no index
#: on the kind, so the read covers this long of the visible sites' events (through the index
#: on site and time); a door not tested for a year shows none.
SELFTEST_WITHIN = timedelta(days=366)


class SelfTestSummary(BaseModel):
    """A device's last self-test on site, as its ``device.selftest`` event reported it."""

    model_config = ConfigDict(frozen=True)

    at: datetime
    passed: bool
    #: The checks that failed: name -> why (``co2.air`` -> ``timeout: no reply ...``).
    failed: dict[str, str] = {}


class DeviceChecks(BaseModel):
    """What a device's own state and the hub's checks say beyond online and offline."""

    model_config = ConfigDict(frozen=True)

    #: A list of its site published more than UNVERIFIED_SECONDS ago is not in its state.
    unverified: bool = False
    #: The version it has not confirmed (the newest published that long ago).
    unconfirmed_version: int | None = None
    #: Times its session was taken over by another connection with its client id.
    takeovers: int = 0
    #: Its components' current faults: component -> what is wrong.
    faults: dict[str, str] = {}
    #: States published as this device that the hub refused (no or a wrong proof).
    refused_states: int = 0
    refused_at: datetime | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def warnings(self) -> int:
        """How many kinds of security warning there are (unverified, take-overs, forgeries)."""
        return int(self.unverified) + int(self.takeovers > 0) + int(self.refused_states > 0)


class FleetRow(DeviceChecks):
    site: str
    device: str
    kind: str = DOOR
    online: bool | None  # None: never reported
    last_seen: datetime | None
    software: str | None
    acl_version: int | None
    latest_version: int | None
    #: Its last self-test on site (None: none within SELFTEST_WITHIN).
    selftest: SelfTestSummary | None = None
    #: When it last enrolled (None: never, or registered before enrolment existed).
    enrolled_at: datetime | None = None
    #: When its access was ended; None while it has it (a new enrolment gives it back).
    revoked_at: datetime | None = None
    #: When its newest certificate ends (None: it has none, or it is revoked). A door renews
    #: with a third of 90 days left; with less than RENEWAL_OVERDUE left, it is not managing.
    certificate_until: datetime | None = None
    certificate_overdue: bool = False

    @computed_field  # type: ignore[prop-decorator]
    @property
    def lag(self) -> int | None:
        """Access-list versions the device is behind (None while either is unknown)."""
        if self.latest_version is None or self.acl_version is None:
            return None
        return max(self.latest_version - self.acl_version, 0)


class DeviceStatus(DeviceChecks):
    """One device of a site, as its page shows it."""

    device: str
    online: bool | None
    software: str | None
    acl_version: int | None
    last_seen: datetime | None


def fleet_rows(engine: Engine, who: Principal) -> list[FleetRow]:
    """The devices at the sites ``who`` may see: offline first, then by site and device."""
    d, s, n = db.devices.c, db.device_states.c, db.occupancy_now.c
    query = (
        select(
            d.site, d.id, d.kind, d.enrolled_at, d.revoked_at,
            *_state_columns(), n.at.label("sample_at"),
        )
        .outerjoin(db.device_states, (s.site == d.site) & (s.device == d.id))
        .outerjoin(db.occupancy_now, (n.site == d.site) & (n.device == d.id))
    )  # fmt: skip
    sites = Scope(who).sites
    if sites is not None:
        query = query.where(d.site.in_(sorted(sites)))
    now = datetime.now(UTC)
    with engine.connect() as conn:
        certificates = certificate_expiry(conn, sites)
        latest = newest_versions(conn)
        required = required_versions(conn, now)
        tested = last_selftests(conn, sites, now)
        rows = [
            FleetRow(
                site=r.site,
                device=r.id,
                kind=r.kind,
                online=r.online,
                last_seen=last_heard(r.received_at, r.sample_at),
                software=r.software,
                acl_version=r.acl_version,
                latest_version=latest.get(r.site),
                selftest=tested.get((r.site, r.id)),
                enrolled_at=db.aware(r.enrolled_at),
                revoked_at=db.aware(r.revoked_at),
                certificate_until=(until := certificates.get((r.site, r.id))),
                certificate_overdue=until is not None and until - now < RENEWAL_OVERDUE,
                **_checks(r, required.get(r.site)),
            )
            for r in conn.execute(query)
        ]
    return sorted(rows, key=lambda r: (bool(r.online), -r.warnings, r.site, r.device))


class DeviceEnrolment(BaseModel):
    """A device as enrolment and revocation see it (what a revocation is confirmed by)."""

    site: str
    device: str
    kind: str
    enrolled_at: datetime | None
    revoked_at: datetime | None


def enrolment_of(engine: Engine, who: Principal, site: str, device: str) -> DeviceEnrolment:
    """``device`` at ``site``; NotFound for one that is not there or at a site ``who`` may
    not see."""
    d = db.devices.c
    if not Scope(who).may_see(site):
        raise NotFound(f"no device {device!r} at {site!r}")
    with engine.connect() as conn:
        row = conn.execute(
            select(d.kind, d.enrolled_at, d.revoked_at).where(d.site == site, d.id == device)
        ).one_or_none()
    if row is None:
        raise NotFound(f"no device {device!r} at {site!r}")
    return DeviceEnrolment(
        site=site,
        device=device,
        kind=row.kind,
        enrolled_at=db.aware(row.enrolled_at),
        revoked_at=db.aware(row.revoked_at),
    )


def site_devices(conn: Connection, site: str) -> list[DeviceStatus]:
    """A site's devices by id, each with its state and when it was last heard from."""
    d, s, n = db.devices.c, db.device_states.c, db.occupancy_now.c
    rows = conn.execute(
        select(d.id, d.kind, *_state_columns(), n.at.label("sample_at"))
        .outerjoin(db.device_states, (s.site == d.site) & (s.device == d.id))
        .outerjoin(db.occupancy_now, (n.site == d.site) & (n.device == d.id))
        .where(d.site == site)
        .order_by(d.id)
    )
    required = required_versions(conn, datetime.now(UTC)).get(site)
    return [
        DeviceStatus(
            device=r.id,
            online=r.online,
            software=r.software,
            acl_version=r.acl_version,
            last_seen=last_heard(r.received_at, r.sample_at),
            **_checks(r, required),
        )
        for r in rows
    ]


def last_selftests(
    conn: Connection, sites: Iterable[str] | None, now: datetime
) -> dict[tuple[str, str], SelfTestSummary]:
    """The newest self-test of each device at ``sites`` (None: every site) within
    SELFTEST_WITHIN of ``now``, by (site, device). Newest by the door's own time: a door sends
    its events in order, but those of a recovered store may arrive after newer ones."""
    e = db.events.c
    query = select(e.site, e.device, e.at, e.data).where(
        e.kind == EventKind.SELFTEST.value, e.at >= (now - SELFTEST_WITHIN).astimezone(UTC)
    )
    if sites is not None:
        query = query.where(e.site.in_(sorted(sites)))
    newest: dict[tuple[str, str], SelfTestSummary] = {}
    for row in conn.execute(query):
        at = db.aware(row.at)
        known = newest.get((row.site, row.device))
        if known is not None and known.at >= at:
            continue
        try:
            test = SelfTest.model_validate(row.data)
        except ValidationError:
            continue  # ingest stores only what validates; a row changed since is not shown
        failed = {c.name: c.detail for c in test.checks if c.outcome == "fail"}
        newest[(row.site, row.device)] = SelfTestSummary(at=at, passed=test.passed, failed=failed)
    return newest


def _state_columns() -> list[Any]:
    s = db.device_states.c
    return [
        s.online, s.software, s.acl_version, s.received_at,
        s.takeovers, s.faults, s.refused_states, s.refused_at,
    ]  # fmt: skip


def _checks(row: Any, required: int | None) -> dict[str, Any]:
    """The checks of a device row (devices joined with device_states)."""
    door_unverified = row.kind == DOOR and unverified(row.acl_version, required)
    return {
        "unverified": door_unverified,
        "unconfirmed_version": required if door_unverified else None,
        "takeovers": row.takeovers or 0,
        "faults": _faults(row.faults),
        "refused_states": row.refused_states or 0,
        "refused_at": db.aware(row.refused_at),
    }


def _faults(stored: object) -> dict[str, str]:
    """The faults a state carried (a JSON object, component -> text), as text for the page."""
    if not isinstance(stored, dict):
        return {}
    return {str(component): str(fault) for component, fault in sorted(stored.items())}


def last_heard(state_at: datetime | None, sample_at: datetime | None) -> datetime | None:
    """When the device was last heard from: its state, or its newest occupancy sample."""
    known = [db.aware(t) for t in (state_at, sample_at) if t is not None]
    return max(known, default=None)
