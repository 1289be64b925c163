"""Which doors hold their site's access list, by what the store says and nothing else.

A door acknowledges a list through its own state: ``device_states.acl_version`` (ingest keeps
only states that carry the door's proof, hafen.device_proof). A door is *unverified* while a
list of its site that was published more than ``UNVERIFIED_AFTER`` ago is newer than the one
its state shows: the hub cannot tell that the door enforces it (a blocked member may still get
in). The fleet page shows it and hub.list_watch keeps sending the list until it is so.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, select, tuple_

from hub import db
from hub.access_compiler import newest_versions

#: A list not shown in a door's state this long after it was published leaves the door
#: unverified. hub.list_watch sends it again well within this (after 15 s, then 30 s later).
UNVERIFIED_AFTER = timedelta(seconds=45)
#: Devices of this kind enforce access lists (a sensor does not).
DOOR = "door"


@dataclass(frozen=True)
class DoorAck:
    """A registered door, the list version its state shows, and what its site published."""

    site: str
    device: str
    online: bool | None  # None: never reported
    acked: int | None  # the version its stored state shows
    newest: int | None  # the site's newest version (None: none published)
    required: int | None  # the newest published at least UNVERIFIED_AFTER ago

    @property
    def lagging(self) -> bool:
        return self.newest is not None and (self.acked or 0) < self.newest

    @property
    def unverified(self) -> bool:
        return unverified(self.acked, self.required)


def unverified(acked: int | None, required: int | None) -> bool:
    """Whether a door showing ``acked`` has not confirmed a list it should have by now."""
    return required is not None and (acked or 0) < required


def required_versions(conn: Connection, now: datetime) -> dict[str, int]:
    """Per site, the newest version published at least ``UNVERIFIED_AFTER`` before ``now``
    (UTC): a look backwards along the primary key from the newest version, which reads only
    the versions published within the bound."""
    v = db.acl_versions.c
    old_enough = (
        select(v.version)
        .where(v.site == db.sites.c.id, v.published_at <= now - UNVERIFIED_AFTER)
        .order_by(v.version.desc())
        .limit(1)
        .scalar_subquery()
    )
    rows = conn.execute(select(db.sites.c.id, old_enough))
    return {site: version for site, version in rows if version is not None}


def door_acks(conn: Connection, now: datetime) -> list[DoorAck]:
    """Every registered door with the version its state shows, by site and device."""
    d, s = db.devices.c, db.device_states.c
    newest = newest_versions(conn)
    required = required_versions(conn, now)
    rows = conn.execute(
        select(d.site, d.id, s.online, s.acl_version)
        .outerjoin(db.device_states, (s.site == d.site) & (s.device == d.id))
        .where(d.kind == DOOR)
        .order_by(d.site, d.id)
    )
    return [
        DoorAck(r.site, r.id, r.online, r.acl_version, newest.get(r.site), required.get(r.site))
        for r in rows
    ]


@dataclass(frozen=True)
class ListVersion:
    """What a stored version is: a snapshot, or a delta from ``base``."""

    site: str
    version: int
    kind: str
    base: int | None


def list_versions(conn: Connection, wanted: Iterable[tuple[str, int]]) -> dict[str, ListVersion]:
    """The kind and base of each (site, version) in ``wanted``, by site."""
    pairs = sorted(set(wanted))
    if not pairs:
        return {}
    v = db.acl_versions.c
    rows = conn.execute(
        select(v.site, v.version, v.kind, v.base).where(tuple_(v.site, v.version).in_(pairs))
    )
    return {r.site: ListVersion(r.site, r.version, r.kind, r.base) for r in rows}
