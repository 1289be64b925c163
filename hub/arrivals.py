"""The tap is the check-in: a member's allowed entry at a site marks their bookings there as
arrived, in the same transaction that stores the entry (hub.ingest.store).

Nobody checks in by hand at the booking tools hafen replaces, so their no-show release either
never fires or punishes the honest. Here the door already knows: an allowed entry at the site
between ``EARLY`` before a booking's start and its end is its arrival. An entry that reaches
the hub late (the door was offline and sends its backlog) still counts, at the time it
happened; a booking keeps its earliest arrival.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, or_, update

from hafen.protocol import EventKind
from hub import db

#: How long before its start a tap counts as arriving for a booking (early birds).
EARLY = timedelta(minutes=60)


def mark_arrivals(conn: Connection, events: Iterable[dict]) -> int:
    """Mark the bookings that the allowed entries among ``events`` arrive for; returns how
    many bookings were marked (or moved to an earlier arrival)."""
    taps: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    for e in events:
        data = e["data"]
        if e["kind"] == EventKind.ACCESS_DECISION and data.get("allowed") and data.get("member"):
            taps[(e["site"], str(data["member"])[:64])].append(e["at"].astimezone(UTC))
    b = db.bookings.c
    marked = 0
    for (site, member), times in taps.items():
        for at in sorted(times):
            marked += conn.execute(
                update(db.bookings)
                .where(
                    b.member_id == member,
                    b.site_id == site,
                    b.cancelled_at.is_(None),
                    b.released_at.is_(None),
                    b.starts_at <= at + EARLY,
                    b.ends_at > at,
                    or_(b.arrived_at.is_(None), b.arrived_at > at),
                )
                .values(arrived_at=at)
            ).rowcount
    return marked
