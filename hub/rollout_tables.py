"""Fleet updates (issue 17): the rollouts of a release to many doors, and each door's part in
one. Written by hub.services.rollouts (made, paused, driven) and by ingest (the doors'
``device.update`` reports, hub.rollout_reports). Reached through hub.db."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
)

from hub.schema import BigId, Json, metadata

rollouts = Table(
    "rollouts",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("version", String(64), ForeignKey("releases.version"), nullable=False),
    #: What was asked for: {"sites": [...] | null, "devices": ["site/device", ...] | null};
    #: both null is the whole network. The devices it became are the rows of rollout_devices.
    Column("target", Json, nullable=False),
    #: The stages as written ("1,10%,100%"), each cumulative.
    Column("stages", String(200), nullable=False),
    Column("stage_count", Integer, nullable=False),
    #: The stage under way (1-based); devices of it and the stages before may be ordered.
    Column("stage", Integer, nullable=False),
    #: Failures (failed, rolled back, refused) beyond which the rollout pauses by itself;
    #: NULL: no count limit (only the share's).
    Column("max_failures", Integer),
    #: ... or beyond this share of the devices of the stages reached; NULL: no share limit.
    Column("max_failure_share", Float),
    #: Failures accepted by a resume: the limits count only the ones after.
    Column("accepted_failures", Integer, nullable=False, server_default="0"),
    Column("deadline_minutes", Integer, nullable=False),
    #: running, paused, aborted or done.
    Column("state", String(10), nullable=False),
    #: Why it is paused, or was aborted: "by nadia", or "by itself: ..." (its failures
    #: passed a limit).
    Column("paused_reason", String(300)),
    Column("created_by", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_rollouts_state", "state"),
)

rollout_devices = Table(
    "rollout_devices",
    metadata,
    Column("rollout_id", BigId, ForeignKey("rollouts.id"), primary_key=True),
    Column("site", String(64), primary_key=True),
    Column("device", String(64), primary_key=True),
    #: 0: already on the version when the rollout was made; else the stage it is in.
    Column("stage", Integer, nullable=False),
    #: pending (not ordered yet), ordered, or a step of hafen.payloads.UpdateStep.
    Column("step", String(12), nullable=False),
    Column("detail", String(300), nullable=False, server_default=""),
    #: The software it reported when the rollout was made.
    Column("from_version", String(40)),
    Column("ordered_at", DateTime(timezone=True)),
    Column("last_order_at", DateTime(timezone=True)),
    Column("deadline_at", DateTime(timezone=True)),
    Column("step_at", DateTime(timezone=True)),
    #: The steps it went through, newest last, at most 20: {step, at, detail, ignored?}.
    Column("history", Json),
    #: TRUE while its rollout is running or paused, NULL after: unique with the device, so a
    #: device is in one live rollout at most (NULLs never collide).
    Column("live", Boolean),
    Index("ux_rollout_devices_live", "site", "device", "live", unique=True),
    Index("ix_rollout_devices_step", "rollout_id", "step"),
)
