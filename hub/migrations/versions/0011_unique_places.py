"""One event per place, and device states that may hold only refusals.

Events and occupancy samples get a unique index on their place (site, device, epoch, seq):
the store can no longer hold two events at one place (issue 13: forged events in a door's
epoch had some seqs stored twice). Places held twice already are cleared first: the row
received first stays (the lower id within a table; between an event and a sample, the one
received first, the event on a tie), and the others move to the dead letters with the reason
"place already used", their place and id kept, their content as JSON (cut to the dead-letter
prefix, with size and hash). Roll-ups counted the moved rows: `hafen hub rebuild-rollups`
recounts them.

Device states may now have no state of the device's own (``online``, ``session`` and
``received_at`` NULL): a registered device whose only states were refused (forged) still
gets its count of refused states.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 10:00:00
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# Spelled out, not imported from hub: a migration must not change when the code does.
Json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
#: As hub.ingest.dead_letters.DEAD_LETTER_PREFIX when this migration was written.
PREFIX_BYTES = 4096
REASON = "place already used (moved by migration 0011)"
PLACE = ("site", "device", "epoch", "seq")
_SAMPLE_DATA = ("count", "capacity", "confidence", "present", "rooms", "co2", "cause")

_events = sa.table(
    "events",
    sa.column("id", sa.BigInteger),
    sa.column("event_id", sa.String),
    *(sa.column(c, sa.String) for c in ("site", "device", "epoch", "kind")),
    sa.column("seq", sa.BigInteger),
    sa.column("at", sa.DateTime(timezone=True)),
    sa.column("data", Json),
    sa.column("received_at", sa.DateTime(timezone=True)),
)
_samples = sa.table(
    "occupancy_samples",
    sa.column("id", sa.BigInteger),
    sa.column("event_id", sa.String),
    *(sa.column(c, sa.String) for c in ("site", "device", "epoch", "cause")),
    sa.column("seq", sa.BigInteger),
    sa.column("at", sa.DateTime(timezone=True)),
    sa.column("count", sa.Integer),
    sa.column("capacity", sa.Integer),
    sa.column("confidence", sa.Float),
    sa.column("present", sa.Boolean),
    sa.column("rooms", Json),
    sa.column("co2", Json),
    sa.column("received_at", sa.DateTime(timezone=True)),
)
_letters = sa.table(
    "dead_letters",
    sa.column("event_id", sa.String),
    *(sa.column(c, sa.String) for c in ("site", "device", "epoch", "topic", "reason")),
    sa.column("seq", sa.BigInteger),
    sa.column("payload", sa.LargeBinary),
    sa.column("payload_bytes", sa.BigInteger),
    sa.column("payload_sha256", sa.String),
    sa.column("received_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    conn = op.get_bind()
    for table in (_events, _samples):
        _move(conn, table, _second_copies(conn, table))
    _move_shared(conn)
    op.drop_index("events_device_seq", table_name="events")
    op.create_index("events_place", "events", list(PLACE), unique=True)
    op.drop_index("occupancy_device_seq", table_name="occupancy_samples")
    op.create_index("occupancy_place", "occupancy_samples", list(PLACE), unique=True)
    with op.batch_alter_table("device_states") as batch:
        for column, kind in _STATE_COLUMNS:
            batch.alter_column(column, existing_type=kind, nullable=True)


_STATE_COLUMNS = (
    ("online", sa.Boolean()),
    ("session", sa.BigInteger()),
    ("received_at", sa.DateTime(timezone=True)),
)


def _second_copies(conn: sa.Connection, table: sa.TableClause) -> list[int]:
    """The ids of rows whose place a row with a lower id holds."""
    t = table.c
    columns = [t[c] for c in PLACE]
    doubled = sa.select(*columns).group_by(*columns).having(sa.func.count() > 1)
    ids = []
    for place in conn.execute(doubled).all():
        rows = conn.execute(
            sa.select(t.id)
            .where(*(t[c] == v for c, v in zip(PLACE, place, strict=True)))
            .order_by(t.id)
        ).scalars()
        ids += list(rows)[1:]
    return ids


def _move_shared(conn: sa.Connection) -> None:
    """Places held by an event and a sample: the one received later moves."""
    e, s = _events.c, _samples.c
    shared = conn.execute(
        sa.select(
            e.id, e.received_at, s.id.label("sample_id"), s.received_at.label("sample_at")
        ).select_from(_events.join(_samples, sa.and_(*(e[c] == s[c] for c in PLACE))))
    ).all()
    later_events = [r.id for r in shared if _aware(r.received_at) > _aware(r.sample_at)]
    later_samples = [r.sample_id for r in shared if _aware(r.received_at) <= _aware(r.sample_at)]
    _move(conn, _events, later_events)
    _move(conn, _samples, later_samples)


def _move(conn: sa.Connection, table: sa.TableClause, ids: list[int]) -> None:
    """Move the rows to the dead letters, one at a time (they are few: forgeries)."""
    for row_id in ids:
        row = conn.execute(sa.select(table).where(table.c.id == row_id)).mappings().one()
        filed = sa.select(_letters.c.event_id).where(_letters.c.event_id == row["event_id"])
        if conn.execute(filed).first() is None:
            conn.execute(_letters.insert().values(**_letter(table, row)))
        conn.execute(table.delete().where(table.c.id == row_id))


def _letter(table: sa.TableClause, row: Any) -> dict[str, Any]:
    if table is _samples:
        kind, data = "occupancy.sample", {k: row[k] for k in _SAMPLE_DATA}
    else:
        kind, data = row["kind"], row["data"]
    body = {
        "schema": 1,
        "event_id": row["event_id"],
        "epoch": row["epoch"],
        "seq": row["seq"],
        "at": _aware(row["at"]).isoformat(),
        "data": data,
    }
    payload = json.dumps(body, separators=(",", ":"), default=str).encode()
    return {
        **{k: row[k] for k in ("event_id", *PLACE)},
        "topic": f"hafen/v1/{row['site']}/{row['device']}/evt/{kind}",
        "payload": payload[:PREFIX_BYTES],
        "payload_bytes": len(payload),
        "payload_sha256": hashlib.sha256(payload).hexdigest(),
        "reason": REASON,
        "received_at": row["received_at"],
    }


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def downgrade() -> None:
    states = sa.table("device_states", sa.column("session", sa.BigInteger))
    op.execute(states.delete().where(states.c.session.is_(None)))
    with op.batch_alter_table("device_states") as batch:
        for column, kind in _STATE_COLUMNS:
            batch.alter_column(column, existing_type=kind, nullable=False)
    op.drop_index("occupancy_place", table_name="occupancy_samples")
    op.create_index("occupancy_device_seq", "occupancy_samples", list(PLACE))
    op.drop_index("events_place", table_name="events")
    op.create_index("events_device_seq", "events", list(PLACE))
