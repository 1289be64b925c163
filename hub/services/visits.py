"""Who came to a site on a day, as its operator sees it: each member's first and last entry.

Read from the visits roll-up that ingest keeps (hub/rollups.py), as the reports are. Days are
calendar days in the site's own time zone; after retention, members appear only by pseudonym
and without a name.
"""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel
from sqlalchemy import Engine, select

from hub import db
from hub.auth import Principal
from hub.services.members import own_members
from hub.services.scope import Scope
from hub.services.sites import site_zone


class Visit(BaseModel):
    member: str
    name: str | None
    first_entry: datetime
    last_entry: datetime
    entries: int


def visits(engine: Engine, who: Principal, site: str, day: date | None = None) -> list[Visit]:
    """The members the site's doors let in on ``day`` (default: the site's today), by first
    entry, with how many times each came in; another site's member (a day guest) is shown
    to an operator by id alone (``own_members``)."""
    v = db.visits.c
    with engine.connect() as conn:
        tz = site_zone(conn, who, site)
        day = day or datetime.now(tz).date()
        rows = conn.execute(
            select(v.member, v.first_at, v.last_at, v.entries, db.members.c.name)
            .outerjoin(db.members, db.members.c.id == v.member)
            .where(v.site == site, v.day == day.isoformat())
            .order_by(v.first_at)
        ).all()
        named = own_members(conn, Scope(who), {r.member for r in rows})
    return [
        Visit(
            member=r.member,
            name=r.name if r.member in named else None,
            first_entry=db.aware(r.first_at),
            last_entry=db.aware(r.last_at),
            entries=r.entries,
        )
        for r in rows
    ]
