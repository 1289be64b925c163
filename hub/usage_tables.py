"""The store's tables of occupancy and use: the samples doors send, and the roll-ups that
ingest keeps of them and of the entries (hub/rollups.py), for the dashboard and the funders'
reports. Reached through hub.db like every other table.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, DateTime, Float, Index, Integer, String, Table

from hub.schema import BigId, Json, metadata


def _estimate_columns() -> list[Column]:
    """What a sample says of the space, as stored with every sample and with each door's
    newest (new Column objects each call: a column belongs to one table)."""
    return [
        Column("count", Integer, nullable=False),
        #: The 90 % interval of the count; NULL from doors that predate it (both or neither).
        Column("low", Integer),
        Column("high", Integer),
        Column("capacity", Integer),
        Column("confidence", Float, nullable=False),
        Column("present", Boolean, nullable=False),
        Column("rooms", Json, nullable=False),
        Column("co2", Json, nullable=False),
    ]


#: Occupancy samples (``occupancy.sample`` events), kept apart from door events: one a minute
#: per site would dwarf them. Stored once by ``event_id``, one per place (as events); their seq
#: counts toward progress.
occupancy_samples = Table(
    "occupancy_samples",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("event_id", String(32), nullable=False, unique=True),
    Column("site", String(64), nullable=False),
    Column("device", String(64), nullable=False),
    Column("epoch", String(16), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    *_estimate_columns(),
    Column("cause", String(20), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Index("occupancy_place", "site", "device", "epoch", "seq", unique=True),
    Index("occupancy_site_at", "site", "at"),
)

# -- roll-ups kept by ingest (hub/rollups.py) ----------------------------------------------

#: One row per member, site and local calendar day with an allowed entry.
visits = Table(
    "visits",
    metadata,
    Column("site", String(64), primary_key=True),
    Column("day", String(10), primary_key=True),  # YYYY-MM-DD in the site's time zone
    Column("member", String(64), primary_key=True),
    Column("company", String(64)),  # the member's company that day, if any
    Column("first_at", DateTime(timezone=True), nullable=False),
    Column("last_at", DateTime(timezone=True), nullable=False),
    Column("entries", Integer, nullable=False),
    Index("visits_member", "member"),
)

#: Per site and local day: entries and members, for the live overview's "today".
site_days = Table(
    "site_days",
    metadata,
    Column("day", String(10), primary_key=True),  # first: the overview asks for one day
    Column("site", String(64), primary_key=True),
    Column("entries", Integer, nullable=False),
    Column("visitors", Integer, nullable=False),
)

#: Per member, site and local month: days visited (of them with a company) and entries.
member_months = Table(
    "member_months",
    metadata,
    Column("month", String(7), primary_key=True),  # YYYY-MM
    Column("site", String(64), primary_key=True),
    Column("member", String(64), primary_key=True),
    Column("days", Integer, nullable=False),
    Column("company_days", Integer, nullable=False),
    Column("entries", Integer, nullable=False),
    Index("member_months_member", "member"),
)

#: Time-weighted occupancy per device and UTC hour, recomputed from samples as they arrive.
occupancy_hours = Table(
    "occupancy_hours",
    metadata,
    Column("site", String(64), primary_key=True),
    Column("device", String(64), primary_key=True),
    Column("hour", DateTime(timezone=True), primary_key=True),
    Column("person_seconds", Float, nullable=False),
    Column("occupied_seconds", Float, nullable=False),
    Column("known_seconds", Float, nullable=False),
    Column("peak", Integer, nullable=False),
    Index("occupancy_hours_hour", "hour"),
)

#: Per site and local month, devices added up hour by hour: what the report needs, kept
#: current by ingest (a month of 500 sites is 360,000 hourly rows, too many to read per report).
occupancy_months = Table(
    "occupancy_months",
    metadata,
    Column("month", String(7), primary_key=True),  # YYYY-MM in the site's time zone
    Column("site", String(64), primary_key=True),
    Column("covered_seconds", Float, nullable=False),
    Column("occupied_seconds", Float, nullable=False),
    Column("occupied_hours", Integer, nullable=False),  # hours with anyone present
    Column("median", Float),  # median headcount over those hours
    Column("peak", Integer),
)

#: Each device's newest sample, so that the live overview never scans the samples.
occupancy_now = Table(
    "occupancy_now",
    metadata,
    Column("site", String(64), primary_key=True),
    Column("device", String(64), primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    *_estimate_columns(),
)
