"""What drives the rollouts (issue 17), one tick at a time: ``advance``. ``hafen hub serve``
ticks every few seconds (hub.rollout_runner); tests call it with a clock of their own.

Each tick, in this order:

1. **Deadlines.** A door ordered that reported neither healthy nor a failure by its deadline
   is failed, with why ("no report within 30 minutes"), whatever its rollout's state:
   nothing stays in progress for ever (hawkbit#693).
2. **Limits.** A running rollout whose failures (failed, rolled back, refused; less those a
   resume accepted) pass ``max_failures`` or ``max_failure_share`` of the doors of the
   stages reached pauses by itself, with why, before it orders another door: checked in
   the middle of a stage too, not only at its end.
3. **Stages.** When every door of the stages reached is at an end, the next stage begins;
   after the last, the rollout is done.
4. **Orders.** Each door of the stages reached not ordered yet is ordered, while its latest
   state is online and its site's update window is open; an order outside waits.
5. **Re-sends.** A door refuses a command older than 2 minutes, and may have been away when
   it came: while it reported nothing beyond "ordered", is online and before its deadline,
   it gets the order again every minute (the door takes the same order again as one).
   Paused rollouts re-send too (pausing stops new orders only); aborted ones do not.

Two hub processes may tick one store at once: every change is a conditional UPDATE of the
state it was decided on (a door is ordered only if it is still pending, a stage begins only
if it is still the one before), so each door is ordered once and each order re-sent once a
minute, whoever wins.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, delete, exists, func, select, update

from hafen.protocol import UpdateOrder
from hub import db
from hub.access_lists import AclPublisher
from hub.commands import command_message
from hub.rollout_steps import FAILURES, ORDERED, PENDING, TERMINAL, UNDER_WAY, mark_failed
from hub.services.rollout_models import LAST_DOOR, LIVE, RolloutState
from hub.services.rollout_reads import window_open

log = logging.getLogger(__name__)

#: Sends an ``update`` order to a door (site, device, order); raises if the broker did not
#: take it.
Send = Callable[[str, str, UpdateOrder], None]
#: How often an order no door answered yet goes out again (a door refuses one older than 2 min).
RESEND_EVERY = timedelta(seconds=60)
#: Orders and re-sends one tick sends at most (the rest wait for the next tick, seconds later):
#: a stage of thousands of doors does not download from the hub all at once.
MAX_SENDS = 100
#: Doors one tick fails for their deadline at most (the rest in the next).
MAX_EXPIRED = 1_000


@dataclass
class Tick:
    """What one tick did."""

    ordered: list[tuple[int, str, str]] = field(default_factory=list)
    resent: list[tuple[int, str, str]] = field(default_factory=list)
    expired: int = 0
    #: (rollout, stage) for each stage begun.
    begun: list[tuple[int, int]] = field(default_factory=list)
    paused: list[int] = field(default_factory=list)
    done: list[int] = field(default_factory=list)
    #: Why the broker took no order this tick ("" while it took them).
    unsent: str = ""


def command_sender(publisher: AclPublisher) -> Send:
    """Orders sealed with the hub's key, on the publisher's connection (as remote unlock)."""

    def send(site: str, device: str, order: UpdateOrder) -> None:
        topic, payload, _ = command_message(
            publisher.key, site, device, "update", order.model_dump()
        )
        publisher.send(topic, payload, retain=False)

    return send


def advance(
    engine: Engine, send: Send, now: datetime | None = None, max_sends: int = MAX_SENDS
) -> Tick:
    """One tick of every rollout (see the module)."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    tick = Tick()
    _expire(engine, now, tick)
    _revoked(engine)
    with engine.connect() as conn:
        running = conn.execute(
            select(db.rollouts)
            .where(db.rollouts.c.state == RolloutState.RUNNING)
            .order_by(db.rollouts.c.id)
        ).all()
    budget = [max_sends]
    for rollout in running:
        stage = _settle(engine, rollout._mapping, now, tick)
        if stage is not None and budget[0] > 0 and not tick.unsent:
            _order(engine, rollout._mapping, stage, send, now, tick, budget)
    if budget[0] > 0 and not tick.unsent:
        _resend(engine, send, now, tick, budget)
    return tick


def _expire(engine: Engine, now: datetime, tick: Tick) -> None:
    rd, r = db.rollout_devices.c, db.rollouts.c
    query = (
        select(rd.rollout_id, rd.site, rd.device, rd.step, r.deadline_minutes)
        .join(db.rollouts, r.id == rd.rollout_id)
        .where(rd.step.in_(UNDER_WAY), rd.deadline_at <= now)
        # The order ingest locks doors in (hub.rollout_steps): two never wait on each other.
        .order_by(rd.rollout_id, rd.site, rd.device)
        .limit(MAX_EXPIRED)
    )
    with engine.connect() as conn:
        late = conn.execute(query).all()
    if not late:
        return
    with db.one_writer(engine), engine.begin() as conn:
        for row in late:
            minutes = row.deadline_minutes
            if row.step == ORDERED:
                why = f"no report within {minutes} minutes"
            else:
                why = f"no outcome within {minutes} minutes (last step: {row.step})"
            if mark_failed(conn, row.rollout_id, row.site, row.device, row.step, why, now):
                tick.expired += 1


def _revoked(engine: Engine) -> None:
    """A door revoked after its rollout began, and not yet ordered, would hold its stage for
    ever (a revoked door is never ordered): it leaves the rollout, as it left the network
    (its revocation is on record with the device), counting neither as done nor failed."""
    rd, r, d = db.rollout_devices.c, db.rollouts.c, db.devices.c
    gone = (
        select(d.id)
        .where(d.site == rd.site, d.id == rd.device, d.revoked_at.is_not(None))
        .exists()
    )
    live = select(r.id).where(r.id == rd.rollout_id, r.state.in_(LIVE)).exists()
    with db.one_writer(engine), engine.begin() as conn:
        conn.execute(delete(db.rollout_devices).where(rd.step == PENDING, gone, live))


def _settle(engine: Engine, rollout: Any, now: datetime, tick: Tick) -> int | None:
    """Pause a running rollout past its limits, begin its stages whose turn it is, end it
    after the last; the stage under way, or None if it runs no more."""
    rd, r = db.rollout_devices.c, db.rollouts.c
    rollout_id = rollout["id"]
    with db.one_writer(engine), engine.begin() as conn:
        counts = Counter[tuple[int, str]]()
        for stage, step, count in conn.execute(
            select(rd.stage, rd.step, func.count())
            .where(rd.rollout_id == rollout_id)
            .group_by(rd.stage, rd.step)
        ):
            counts[(stage, step)] = count
        stage = rollout["stage"]
        why = _past_limits(rollout, counts, stage)
        if why:
            example = conn.execute(
                select(rd.site, rd.device, rd.step, rd.detail)
                .where(rd.rollout_id == rollout_id, rd.step.in_(FAILURES))
                .order_by(rd.step_at.desc())
                .limit(1)
            ).one()
            why += f"{LAST_DOOR}{example.site}/{example.device} {example.step}: {example.detail}"
            paused = conn.execute(
                update(db.rollouts)
                .where(r.id == rollout_id, r.state == RolloutState.RUNNING)
                .values(state=RolloutState.PAUSED, paused_reason=why[:300], updated_at=now)
            ).rowcount
            if paused:
                tick.paused.append(rollout_id)
            return None
        while all(s < 1 or s > stage or step in TERMINAL for (s, step), n in counts.items() if n):
            if stage >= rollout["stage_count"]:
                ended = conn.execute(
                    update(db.rollouts)
                    .where(r.id == rollout_id, r.state == RolloutState.RUNNING, r.stage == stage)
                    .values(state=RolloutState.DONE, updated_at=now)
                ).rowcount
                if ended:
                    conn.execute(
                        update(db.rollout_devices)
                        .where(rd.rollout_id == rollout_id)
                        .values(live=None)
                    )
                    tick.done.append(rollout_id)
                return None
            begun = conn.execute(
                update(db.rollouts)
                .where(r.id == rollout_id, r.state == RolloutState.RUNNING, r.stage == stage)
                .values(stage=stage + 1, updated_at=now)
            ).rowcount
            if not begun:  # another hub process moved it on: its tick goes on from there
                return None
            stage += 1
            tick.begun.append((rollout_id, stage))
        return stage


def _past_limits(rollout: Any, counts: Counter[tuple[int, str]], stage: int) -> str:
    """Why the rollout's failures pass its limits ("" while they do not)."""
    failures = sum(n for (s, step), n in counts.items() if s >= 1 and step in FAILURES)
    counted = failures - rollout["accepted_failures"]
    if counted <= 0:
        return ""
    failed = f"{counted} failure{'s' if counted > 1 else ''}"
    if rollout["accepted_failures"]:
        failed += " since it was resumed"
    limit = rollout["max_failures"]
    if limit is not None and counted > limit:
        return f"by itself: {failed}, more than max_failures {limit}"
    share = rollout["max_failure_share"]
    reached = sum(n for (s, _step), n in counts.items() if 1 <= s <= stage)
    if share is not None and reached and counted / reached > share:
        return (
            f"by itself: {failed} of {reached} devices ({counted / reached:.0%}),"
            f" more than max_failure_share {share:.0%}"
        )
    return ""


def _order(
    engine: Engine,
    rollout: Any,
    stage: int,
    send: Send,
    now: datetime,
    tick: Tick,
    budget: list[int],
) -> None:
    """Order the doors of the stages reached that are pending, online and in their site's
    window, each claimed before it is sent (see the module)."""
    rd, r, st, s = db.rollout_devices.c, db.rollouts.c, db.device_states.c, db.sites.c
    d = db.devices.c
    rollout_id = rollout["id"]
    query = (
        select(rd.site, rd.device, s.update_window, s.timezone)
        .join(db.device_states, and_(st.site == rd.site, st.device == rd.device))
        .join(db.devices, and_(d.site == rd.site, d.id == rd.device))
        .join(db.sites, s.id == rd.site)
        .where(rd.rollout_id == rollout_id, rd.step == PENDING, rd.stage.between(1, stage))
        # Online as its last state said, and still the network's (a revoked door's will
        # may be lost).
        .where(st.online.is_(True), d.revoked_at.is_(None), d.enrolled_at.is_not(None))
        .order_by(rd.stage, rd.site, rd.device)
    )
    with engine.connect() as conn:
        candidates = conn.execute(query).all()
    windows: dict[str, bool] = {}  # per site: its window read once a tick
    ready = []
    for door in candidates:
        if door.site not in windows:
            windows[door.site] = window_open(door.update_window, door.timezone, now)
        if windows[door.site]:
            ready.append(door)
    still_running = exists().where(
        r.id == rollout_id, r.state == RolloutState.RUNNING, r.stage >= rd.stage
    )
    deadline = now + timedelta(minutes=rollout["deadline_minutes"])
    order = UpdateOrder(rollout=rollout_id, version=rollout["version"])
    for door in ready:
        if budget[0] <= 0 or tick.unsent:
            return
        with db.one_writer(engine), engine.begin() as conn:
            claimed = conn.execute(
                update(db.rollout_devices)
                .where(rd.rollout_id == rollout_id, rd.site == door.site)
                .where(rd.device == door.device, rd.step == PENDING, still_running)
                .values(
                    step=ORDERED,
                    detail="",
                    ordered_at=now,
                    last_order_at=now,
                    deadline_at=deadline,
                    step_at=now,
                    history=[{"step": ORDERED, "at": now.isoformat(), "detail": ""}],
                )
            ).rowcount
        if not claimed:
            continue
        budget[0] -= 1
        if _sent(send, door.site, door.device, order, tick):
            tick.ordered.append((rollout_id, door.site, door.device))


def _resend(engine: Engine, send: Send, now: datetime, tick: Tick, budget: list[int]) -> None:
    """Send again the orders no door answered for a minute (see the module)."""
    rd, r, st, s = db.rollout_devices.c, db.rollouts.c, db.device_states.c, db.sites.c
    query = (
        select(
            rd.rollout_id,
            rd.site,
            rd.device,
            rd.last_order_at,
            r.version,
            s.update_window,
            s.timezone,
        )
        .join(db.rollouts, r.id == rd.rollout_id)
        .join(db.device_states, and_(st.site == rd.site, st.device == rd.device))
        .join(db.sites, s.id == rd.site)
        .where(r.state.in_(LIVE), rd.step == ORDERED, st.online.is_(True))
        .where(rd.last_order_at <= now - RESEND_EVERY, rd.deadline_at > now)
        .order_by(rd.last_order_at)
        .limit(budget[0])
    )
    with engine.connect() as conn:
        due = conn.execute(query).all()
    windows: dict[str, bool] = {}
    for door in due:
        if budget[0] <= 0 or tick.unsent:
            return
        if door.site not in windows:  # an order again only inside the window, as the first
            windows[door.site] = window_open(door.update_window, door.timezone, now)
        if not windows[door.site]:
            continue
        with db.one_writer(engine), engine.begin() as conn:
            claimed = conn.execute(
                update(db.rollout_devices)
                .where(rd.rollout_id == door.rollout_id, rd.site == door.site)
                .where(rd.device == door.device, rd.step == ORDERED)
                .where(rd.last_order_at == door.last_order_at)
                .values(last_order_at=now)
            ).rowcount
        if not claimed:
            continue
        budget[0] -= 1
        order = UpdateOrder(rollout=door.rollout_id, version=door.version)
        if _sent(send, door.site, door.device, order, tick):
            tick.resent.append((door.rollout_id, door.site, door.device))


def _sent(send: Send, site: str, device: str, order: UpdateOrder, tick: Tick) -> bool:
    """Send one order; a broker that does not take it ends this tick's sending (the door's
    claim stands: its order goes out again with the re-sends)."""
    try:
        send(site, device, order)
    except Exception as exc:  # the broker is away, a timeout: the next ticks try again
        tick.unsent = f"the broker did not take the order for {site}/{device}: {exc}"
        return False
    return True
