"""Reading rollouts (issue 17): the list, and one with its stages and each door's step, why,
and what a door not ordered yet waits for.

A network admin and a technician (who looks after devices everywhere) see every rollout; a
site operator those that touch their sites, with only their sites' doors in the counts and
the list. Nobody else sees any.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, func, select

from hafen.acl import TimeWindow
from hub import db
from hub.auth import Principal, Role
from hub.rollout_steps import FAILURES, HEALTHY, PENDING, TERMINAL
from hub.services.errors import NotFound
from hub.services.opening import WeeklyHours
from hub.services.rollout_models import (
    LAST_DOOR,
    Rollout,
    RolloutDetail,
    RolloutDevice,
    RolloutStage,
    RolloutState,
    RolloutTarget,
    StepEntry,
    Waiting,
)
from hub.services.scope import Scope

__all__ = [
    "RolloutDetail",
    "Tally",
    "get_rollout",
    "list_rollouts",
    "live_rollout_of",
    "tally",
    "window_open",
]

#: The rollouts a list shows, newest first.
MAX_LISTED = 200
#: Who may read rollouts: the roles that look after the sites and their doors.
READERS = (Role.NETWORK_ADMIN, Role.SITE_OPERATOR, Role.TECHNICIAN)


class Tally(NamedTuple):
    """A rollout's (or a stage's) doors in four heaps: at the end well, at the end badly
    (failed, rolled back, refused), ordered and not at an end yet, not ordered yet."""

    healthy: int
    failed: int
    under_way: int
    pending: int


def tally(steps: Mapping[str, int]) -> Tally:
    """``steps`` (step -> doors, as ``Rollout.steps``) in the four heaps of ``Tally``."""
    failed = sum(n for step, n in steps.items() if step in FAILURES)
    healthy, pending = steps.get(HEALTHY, 0), steps.get(PENDING, 0)
    return Tally(healthy, failed, sum(steps.values()) - healthy - failed - pending, pending)


def list_rollouts(
    engine: Engine, who: Principal, limit: int = MAX_LISTED, before: int | None = None
) -> list[Rollout]:
    """The newest rollouts ``who`` may see (at most ``limit``, and only those older than the
    rollout ``before``: the next page), newest first, each with its doors' steps counted."""
    scope = Scope(who)
    scope.require_role(*READERS)
    r, rd = db.rollouts.c, db.rollout_devices.c
    with engine.connect() as conn:
        query = select(db.rollouts).order_by(r.id.desc()).limit(max(min(limit, MAX_LISTED), 0))
        if before is not None:
            query = query.where(r.id < before)
        if scope.sites is not None:
            mine = select(rd.rollout_id).where(rd.site.in_(sorted(scope.sites)))
            query = query.where(r.id.in_(mine))
        rows = conn.execute(query).all()
        ids = [row.id for row in rows]
        counts: dict[int, Counter[str]] = {i: Counter() for i in ids}
        steps = select(rd.rollout_id, rd.step, func.count()).where(rd.rollout_id.in_(ids))
        if scope.sites is not None:
            steps = steps.where(rd.site.in_(sorted(scope.sites)))
        for rollout_id, step, count in conn.execute(steps.group_by(rd.rollout_id, rd.step)):
            counts[rollout_id][step] = count
    return [_rollout(row._mapping, counts[row.id], scope.sites) for row in rows]


def get_rollout(
    engine: Engine, who: Principal, rollout: int, now: datetime | None = None
) -> RolloutDetail:
    """One rollout with its stages and the doors ``who`` may see; NotFound for one they may
    not see, as for none."""
    scope = Scope(who)
    scope.require_role(*READERS)
    now = now or datetime.now(UTC)
    r, rd = db.rollouts.c, db.rollout_devices.c
    with engine.connect() as conn:
        row = conn.execute(select(db.rollouts).where(r.id == rollout)).one_or_none()
        query = select(db.rollout_devices).where(rd.rollout_id == rollout)
        if scope.sites is not None:
            query = query.where(rd.site.in_(sorted(scope.sites)))
        doors = conn.execute(query.order_by(rd.stage, rd.site, rd.device)).all()
        if row is None or (scope.sites is not None and not doors):
            raise NotFound(f"no rollout {rollout}")
        waits = _waits(conn, row, [d for d in doors if d.step == PENDING], now)
    devices = [_device(d._mapping, row.state, waits.get((d.site, d.device))) for d in doors]
    base = _rollout(row._mapping, Counter(d.step for d in devices), scope.sites)
    specs = row.stages.split(",")
    stages = []
    for number, spec in enumerate(specs, start=1):
        mine = [d for d in devices if d.stage == number]
        stages.append(
            RolloutStage(
                number=number,
                spec=spec,
                device_count=len(mine),
                steps=dict(Counter(d.step for d in mine)),
                finished=all(d.step in TERMINAL for d in mine),
            )
        )
    return RolloutDetail(**base.model_dump(), stage_list=stages, device_list=devices)


def live_rollout_of(engine: Engine, who: Principal) -> dict[tuple[str, str], int]:
    """The running or paused rollout each door ``who`` may see is in, by (site, device):
    where the fleet page links a door to its rollout. A door is in one at most (the store
    holds that: hub.services.rollouts)."""
    scope = Scope(who)
    scope.require_role(*READERS)
    rd = db.rollout_devices.c
    query = select(rd.site, rd.device, rd.rollout_id).where(rd.live.is_(True))
    if scope.sites is not None:
        query = query.where(rd.site.in_(sorted(scope.sites)))
    with engine.connect() as conn:
        return {(row.site, row.device): row.rollout_id for row in conn.execute(query)}


#: A door is ordered only while its site's window stays open this much longer: an update
#: (download, install, hand-over, gate) takes minutes, and must not run into opening hours.
UPDATE_TAKES = timedelta(minutes=15)


def window_open(window: list | None, timezone: str, now: datetime) -> bool:
    """Whether a site's update window (its stored weekly windows in its time zone; None: any
    time) is open at ``now`` and still in ``UPDATE_TAKES``."""
    if window is None:
        return True
    hours = WeeklyHours.of([TimeWindow.model_validate(w) for w in window])
    zone = ZoneInfo(timezone)
    return hours.open_at(now.astimezone(zone)) and hours.open_at(
        (now + UPDATE_TAKES).astimezone(zone)
    )


def _waits(
    conn: Connection, rollout: Any, pending: list[Any], now: datetime
) -> dict[tuple[str, str], Waiting]:
    """What each door not ordered yet waits for, in the order the driver asks."""
    if not pending:
        return {}
    sites = sorted({d.site for d in pending})
    s, st = db.sites.c, db.device_states.c
    window_open_now = {
        row.id: window_open(row.update_window, row.timezone, now)
        for row in conn.execute(select(s.id, s.update_window, s.timezone).where(s.id.in_(sites)))
    }
    online = {
        (row.site, row.device)
        for row in conn.execute(
            select(st.site, st.device).where(st.site.in_(sites), st.online.is_(True))
        )
    }
    waits = {}
    for door in pending:
        key = (door.site, door.device)
        if rollout.state != RolloutState.RUNNING:
            waits[key] = Waiting.NOT_RUNNING
        elif door.stage > rollout.stage:
            waits[key] = Waiting.STAGE
        elif key not in online:
            waits[key] = Waiting.OFFLINE
        elif not window_open_now.get(door.site, True):
            waits[key] = Waiting.WINDOW
        else:
            waits[key] = Waiting.NEXT_ROUND
    return waits


def _rollout(
    row: Mapping[Any, Any], steps: Counter[str], sites: frozenset[str] | None
) -> Rollout:
    """The rollout as one who sees only ``sites`` (None: all) may see it: other sites and
    their doors are not named, in its target nor in why it paused."""
    target = RolloutTarget.model_validate(row["target"])
    reason = row["paused_reason"]
    if sites is not None:
        target = RolloutTarget(
            sites=None if target.sites is None else [s for s in target.sites if s in sites],
            devices=None
            if target.devices is None
            else [d for d in target.devices if d.split("/", 1)[0] in sites],
        )
        head, last, door = (reason or "").partition(LAST_DOOR)
        if last and door.split("/", 1)[0] not in sites:
            reason = head
    return Rollout(
        id=row["id"],
        version=row["version"],
        target=target,
        stages=row["stages"],
        stage=row["stage"],
        stage_count=row["stage_count"],
        max_failures=row["max_failures"],
        max_failure_share=row["max_failure_share"],
        accepted_failures=row["accepted_failures"],
        deadline_minutes=row["deadline_minutes"],
        state=row["state"],
        paused_reason=reason,
        created_by=row["created_by"],
        created_at=db.aware(row["created_at"]),
        updated_at=db.aware(row["updated_at"]),
        device_count=sum(steps.values()),
        failures=sum(n for step, n in steps.items() if step in FAILURES),
        steps=dict(steps),
    )


def _device(row: Mapping[Any, Any], state: str, waiting: Waiting | None) -> RolloutDevice:
    return RolloutDevice(
        site=row["site"],
        device=row["device"],
        stage=row["stage"],
        step=row["step"],
        detail=row["detail"],
        from_version=row["from_version"],
        ordered_at=db.aware(row["ordered_at"]),
        last_order_at=db.aware(row["last_order_at"]),
        deadline_at=db.aware(row["deadline_at"]),
        step_at=db.aware(row["step_at"]),
        history=[StepEntry.model_validate(entry) for entry in row["history"] or ()],
        waits_for=waiting,
        waiting=waiting.says(state, row["stage"]) if waiting else None,
    )
