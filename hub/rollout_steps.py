"""Where each door of a rollout stands, and the doors' ``device.update`` reports that move it
(issue 17). Ingest records the reports in the transaction that stores them
(hub.ingest.store); the rollout driver (hub.services.rollout_driver) orders the doors and
marks those past their deadline, through the same rules here.

A door's step only moves forward, in the order of ``UpdateStep`` after the hub's own two
(``pending``: not ordered yet; ``ordered``): a late ``downloading`` after ``installed`` is
ignored. The terminal steps (healthy, failed, rolled back, refused) are final, except that
a later ``rolled_back`` overrides ``healthy``: the new version passed its health gate and
then crashed. A ``healthy`` counts only from the version it is about (hawkbit#3185: success
recorded before the device ran the new version); from another it is recorded as a failure.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select, update

from hafen.payloads import MAX_UPDATE_DETAIL, EventKind, UpdateStep
from hub import db

log = logging.getLogger(__name__)

#: The hub's own steps before the door's: not ordered yet, and ordered (no report since).
PENDING, ORDERED = "pending", "ordered"
#: Every step in its order: a door's step moves only to a later one (but see ``accepts``).
STEPS = (PENDING, ORDERED, *(step.value for step in UpdateStep))
RANK = {step: rank for rank, step in enumerate(STEPS)}
HEALTHY = UpdateStep.HEALTHY.value
FAILED = UpdateStep.FAILED.value
ROLLED_BACK = UpdateStep.ROLLED_BACK.value
#: What counts against a rollout's limits.
FAILURES = frozenset({FAILED, ROLLED_BACK, UpdateStep.REFUSED.value})
#: Where a door's part ends: nothing is ordered or re-sent any more, no deadline runs.
TERMINAL = FAILURES | {HEALTHY}
#: Ordered, not at an end: its deadline runs.
UNDER_WAY = tuple(step for step in STEPS if step not in TERMINAL and step != PENDING)
#: The steps a door reports.
UPDATE_STEPS = frozenset(step.value for step in UpdateStep)
#: The steps a door's history keeps, newest last.
MAX_HISTORY = 20
#: At most one log line per this many seconds about reports that fit no rollout.
LOG_EVERY = 60.0


def accepts(current: str, reported: str) -> bool:
    """Whether a door at ``current`` may move to ``reported`` (see the module)."""
    if current in TERMINAL:
        return current == HEALTHY and reported == ROLLED_BACK
    return RANK[reported] > RANK[current]


def with_entry(history: Sequence[Mapping[str, Any]] | None, entry: dict[str, Any]) -> list:
    """``history`` with ``entry`` last, the oldest dropped past ``MAX_HISTORY``."""
    return [*(history or ()), entry][-MAX_HISTORY:]


#: Control characters (C0, DEL, C1): a door's words reach terminals and pages as plain text.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def bounded(detail: str) -> str:
    """A door's (or the driver's) why as stored: control characters made spaces, cut to
    MAX_UPDATE_DETAIL."""
    return _CONTROL.sub(" ", detail)[:MAX_UPDATE_DETAIL]


@dataclass
class Recorded:
    """What one batch's update reports did."""

    moved: int = 0
    #: Reports of a known door that came too late or out of order (kept in its history).
    stale: int = 0
    #: Reports for no rollout the hub has, or a door not in it, or not ordered by it.
    unknown: int = 0


class _Ignored:
    """Counts reports that fit no rollout and logs them at most once a minute, so a flood
    of forged ones costs ingest no more than a counter."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0
        self._logged = 0.0

    def add(self, count: int, example: str) -> None:
        with self._lock:
            self._count += count
            if time.monotonic() - self._logged < LOG_EVERY:
                return
            self._logged = time.monotonic()
            total, self._count = self._count, 0
        log.warning("ignored %d update reports that fit no rollout, e.g. %s", total, example)


IGNORED = _Ignored()


def record_reports(conn: Connection, events: Iterable[dict]) -> Recorded:
    """Move each reporting door's row of its rollout by the ``device.update`` events among
    ``events`` (newly stored ones), in the order the door sent them; the rest is counted."""
    reports = sorted(
        (e for e in events if e["kind"] == EventKind.UPDATE and e["data"].get("rollout")),
        key=lambda e: (e["data"]["rollout"], e["site"], e["device"], e["epoch"], e["seq"]),
    )
    done = Recorded()
    unknown = ""
    for event in reports:
        outcome = _record(conn, event)
        if outcome == "moved":
            done.moved += 1
        elif outcome == "stale":
            done.stale += 1
        else:
            done.unknown += 1
            unknown = f"{event['site']}/{event['device']}: {outcome}"
    if done.unknown:
        IGNORED.add(done.unknown, unknown)
    return done


def _record(conn: Connection, event: dict) -> str:
    """One report: "moved", "stale", or why it fits no rollout."""
    data, rd = event["data"], db.rollout_devices.c
    rollout = conn.execute(
        select(db.rollouts.c.version).where(db.rollouts.c.id == data["rollout"])
    ).one_or_none()
    if rollout is None:
        return f"no rollout {data['rollout']}"
    where = (rd.rollout_id == data["rollout"]) & (rd.site == event["site"])
    where &= rd.device == event["device"]
    # Locked (PostgreSQL) for the rest of ingest's transaction: the driver's deadline and
    # another worker's report for this door wait, then see this step.
    row = conn.execute(
        select(rd.step, rd.history, rd.ordered_at).where(where).with_for_update()
    ).one_or_none()
    if row is None:
        return f"not in rollout {data['rollout']}"
    if row.ordered_at is None:  # not yet, or never: it ran the version when the rollout began
        return f"not ordered in rollout {data['rollout']}"
    if data["version"] != rollout.version:
        return f"about {data['version']}, not rollout {data['rollout']}'s {rollout.version}"
    at = event["received_at"].astimezone(UTC)
    step, detail = data["step"], bounded(data.get("detail") or "")
    if step not in UPDATE_STEPS:  # ingest validated it; a step the hub sets is no report
        return f"no step {str(step)[:20]!r}"
    if step == HEALTHY and data["running"] != rollout.version:
        step, detail = FAILED, bounded(f"reported healthy while running {data['running']}")
    entry = {"step": step, "at": at.isoformat(), "detail": detail}
    if not accepts(row.step, step):
        entry["ignored"] = True
        conn.execute(
            update(db.rollout_devices)
            .where(where, rd.step == row.step)
            .values(history=with_entry(row.history, entry))
        )
        return "stale"
    moved = conn.execute(
        update(db.rollout_devices)
        .where(where, rd.step == row.step)
        .values(step=step, detail=detail, step_at=at, history=with_entry(row.history, entry))
    ).rowcount
    return "moved" if moved else "stale"


def mark_failed(
    conn: Connection, rollout: int, site: str, device: str, current: str, why: str, now: datetime
) -> bool:
    """The driver's failure of a door (its deadline passed), unless its step moved
    meanwhile; whether it was marked."""
    rd = db.rollout_devices.c
    where = (rd.rollout_id == rollout) & (rd.site == site) & (rd.device == device)
    row = conn.execute(select(rd.step, rd.history).where(where).with_for_update()).one_or_none()
    if row is None or row.step != current:
        return False
    entry = {"step": FAILED, "at": now.isoformat(), "detail": bounded(why)}
    return bool(
        conn.execute(
            update(db.rollout_devices)
            .where(where, rd.step == current)
            .values(
                step=FAILED,
                detail=bounded(why),
                step_at=now,
                history=with_entry(row.history, entry),
            )
        ).rowcount
    )
