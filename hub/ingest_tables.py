"""What ingest says of itself: each worker's connection and its last sign of life. The
booking sweeper releases a no-show only while ingest has been listening (a tap the hub never
stored must not cost an honest member their desk). Reached through hub.db."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, String, Table

from hub.schema import metadata

#: One row per running ingest worker (its name); deleted when it stops cleanly.
ingest_workers = Table(
    "ingest_workers",
    metadata,
    Column("name", String(64), primary_key=True),
    #: Since when its broker connection has held without a break (reset on each reconnect).
    Column("up_since", DateTime(timezone=True), nullable=False),
    #: When its loop last ran while connected (every ``hub.ingest.beats.BEAT_SECONDS``).
    Column("beat_at", DateTime(timezone=True), nullable=False),
)
