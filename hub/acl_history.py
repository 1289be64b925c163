"""The access-list versions the hub recorded (``acl_versions``): each site's chain of snapshots
and deltas, kept compressed as they were sent. A version is recorded before it is published,
so a version number names exactly one list, across every hub process sharing the store."""

from __future__ import annotations

import zlib
from datetime import datetime

from sqlalchemy import Engine, Row, func, select

from hafen.acl import AccessList, AccessListDelta, patch
from hub import db

#: One recorded version: (site, version, kind, base, compressed body, message size).
Recorded = tuple[str, int, str, int | None, bytes, int]


def rebuild(engine: Engine, site: str) -> AccessList | None:
    """The newest list recorded for ``site``: its newest snapshot with the deltas after it
    applied (None: the site never had one)."""
    v = db.acl_versions.c
    with engine.connect() as conn:
        newest_snapshot = conn.scalar(
            select(func.max(v.version)).where(v.site == site, v.kind == "snapshot")
        )
        rows = conn.execute(
            select(db.acl_versions)
            .where(v.site == site, v.version >= (newest_snapshot or 0))
            .order_by(v.version)
        ).all()
    doc = None
    for row in rows:
        body = zlib.decompress(row.body)
        if row.kind == "snapshot":
            doc = AccessList.model_validate_json(body)
        elif doc is not None:
            doc = patch(doc, AccessListDelta.model_validate_json(body))
    return doc


def record(engine: Engine, rows: list[Recorded], now: datetime) -> None:
    """Store versions before they are sent, all in one transaction (a version taken by
    another publisher meanwhile fails on the primary key: nothing of the batch is kept).
    On SQLite it queues with the bookings whose changes it sends (``db.one_writer``): left to
    SQLite's polling it lost the write lock to them again and again under a rush."""
    if not rows:
        return
    with db.one_writer(engine), engine.begin() as conn:
        conn.execute(
            db.acl_versions.insert(),
            [
                {
                    "site": site,
                    "version": version,
                    "kind": kind,
                    "base": base,
                    "body": body,
                    "message_bytes": size,
                    "published_at": now,
                }
                for site, version, kind, base, body, size in rows
            ],
        )


def newest_version(engine: Engine, site: str) -> int:
    """The newest version recorded for ``site`` by any hub process (0: none)."""
    with engine.connect() as conn:
        newest = conn.scalar(
            select(func.max(db.acl_versions.c.version)).where(db.acl_versions.c.site == site)
        )
    return newest or 0


def newest_row(engine: Engine, site: str) -> Row | None:
    """The newest recorded version of ``site`` as (version, kind, body), None if none."""
    v = db.acl_versions.c
    with engine.connect() as conn:
        return conn.execute(
            select(v.version, v.kind, v.body)
            .where(v.site == site)
            .order_by(v.version.desc())
            .limit(1)
        ).one_or_none()
