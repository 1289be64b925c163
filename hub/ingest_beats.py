"""Ingest's sign of life, and what the booking sweeper concludes from it.

Each ingest worker writes its row of ``ingest_workers`` (hub.ingest_tables) when its loop runs
while it is connected to the broker: ``up_since``, when that connection came up (a reconnect
starts it afresh), and ``beat_at``, every ``BEAT_SECONDS``. A worker that stops cleanly
deletes its row; one that dies leaves it, going silent.

``listening`` says whether ingest has heard everything the doors sent up to a moment: some
worker was seen within ``KNOWN``, and every such worker beat within ``SILENT`` of now with a
connection older than that moment. ``SILENT`` is shorter than the sweeper's settling time,
so a worker's last beat falls after the moment: its connection held from before the moment
until after it, and the doors' messages of that time reached it (the broker holds QoS 1
messages for a shared subscription's connected members; a worker that was away replays
its session's after it reconnects, which starts ``up_since`` anew). A worker that died
holds every release until it comes back, or is retired (``--retire``), or ``KNOWN`` ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine, delete, select, update
from sqlalchemy.exc import IntegrityError

from hub import db

#: How often a connected worker says it is alive.
BEAT_SECONDS = 20.0
#: A worker silent for longer is down (about two missed beats and a slow store's write).
SILENT = timedelta(seconds=60)
#: A worker silent for longer is taken as gone for good: the broker's
#: ``persistent_client_expiration`` (provisioning/mosquitto/conf.d/hafen.conf), until when
#: its session keeps being sent its share of the doors' messages. ``hafen hub ingest
#: --retire NAME`` ends a worker gone for good sooner, storing what its session holds.
KNOWN = timedelta(days=14)


def beat(engine: Engine, name: str, up_since: datetime, now: datetime) -> None:
    """Record that worker ``name``, connected since ``up_since``, is alive at ``now``."""
    w = db.ingest_workers.c
    values = {"up_since": up_since, "beat_at": now}
    with engine.begin() as conn:
        if conn.execute(update(db.ingest_workers).where(w.name == name).values(values)).rowcount:
            return
    try:
        with engine.begin() as conn:
            conn.execute(db.ingest_workers.insert().values(name=name, **values))
    except IntegrityError:  # another process of the same name inserted it first: update
        with engine.begin() as conn:
            conn.execute(update(db.ingest_workers).where(w.name == name).values(values))


def gone(engine: Engine, name: str) -> None:
    """Worker ``name`` stopped cleanly: it no longer holds the sweep."""
    with engine.begin() as conn:
        conn.execute(delete(db.ingest_workers).where(db.ingest_workers.c.name == name))


@dataclass(frozen=True)
class Hearing:
    """Whether ingest has heard the doors up to a moment, and if not, why (for the log)."""

    listening: bool
    why_not: str = ""


def listening(conn: Connection, since: datetime, now: datetime) -> Hearing:
    """Whether every message the doors sent up to ``since`` has reached ingest (see the
    module), judged at ``now``."""
    w = db.ingest_workers.c
    rows = conn.execute(select(w.name, w.up_since, w.beat_at).where(w.beat_at >= now - KNOWN)).all()
    if not rows:
        return Hearing(False, "no ingest worker is running")
    for row in rows:
        beat_at, up_since = _utc(row.beat_at), _utc(row.up_since)
        if beat_at < now - SILENT:
            return Hearing(False, f"ingest worker {row.name} silent since {beat_at:%H:%M:%S} UTC")
        if up_since > since:
            why = f"ingest worker {row.name} (re)connected only at {up_since:%H:%M:%S} UTC"
            return Hearing(False, why)
    return Hearing(True)


def _utc(value: datetime) -> datetime:
    return db.aware(value).astimezone(UTC)
