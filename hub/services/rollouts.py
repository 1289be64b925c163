"""Rollouts of a release to the fleet (issue 17): starting one, and pausing, resuming and
aborting it. Reading them is hub.services.rollout_reads; driving them (ordering doors,
deadlines, stages) hub.services.rollout_driver; the doors' reports hub.rollout_steps.

A rollout's doors are fixed when it starts, each in a stage, in an order that depends only on
the version and the door (the same request picks the same canary). Doors revoked or never
enrolled are no targets; doors that report the version already are done at once (stage 0,
"healthy", "already on it"). A door is in one live (running or paused) rollout at most: the
store holds that (``rollout_devices.live``), so two admins starting rollouts at once cannot
both take one door.

A door that runs a newer version than the rollout's is rolled back: only by a rollout that
says so (``rollback``), and only with a signed rollback held from the version it runs
(hub.services.releases.add_rollback), which the hub then serves it
(hub.services.release_downloads). A door whose version is not known is ordered as any: its
updater refuses what it may not install.

Only a network admin starts and steers rollouts; a site operator and a technician may read
them (hub.services.rollout_reads).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from packaging.version import Version
from sqlalchemy import Connection, Engine, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from hub import db
from hub.auth import Principal, Role
from hub.rollout_steps import FAILURES, HEALTHY, PENDING, UNDER_WAY
from hub.services.errors import Conflict, Invalid, NotFound
from hub.services.releases import goes_back, rollbacks_held
from hub.services.rollout_models import (
    LIVE,
    MAX_DEVICES,
    RolloutDetail,
    RolloutIn,
    RolloutState,
    RolloutTarget,
    stage_sizes,
)
from hub.services.rollout_reads import get_rollout
from hub.services.scope import Scope
from hub.services.sites import require_sites

#: Rows per INSERT when a rollout's doors are written.
_ROWS_PER_INSERT = 500


def create_rollout(
    engine: Engine, who: Principal, asked: RolloutIn, now: datetime | None = None
) -> RolloutDetail:
    """Start rolling ``asked.version`` out (see the module). Invalid: no such release, a
    site or device that is not there (or revoked, or never enrolled, when named), no door to
    update, or more than ``MAX_DEVICES``, a door to take back to an older version without
    ``rollback`` or without a rollback held from its version; Conflict: a door is in another
    live rollout."""
    Scope(who).require_role(Role.NETWORK_ADMIN)
    now = now or datetime.now(UTC)
    target = RolloutTarget(sites=asked.sites, devices=asked.devices)
    with db.one_writer(engine), engine.begin() as conn:
        if (
            conn.scalar(select(db.releases.c.version).where(db.releases.c.version == asked.version))
            is None
        ):
            raise Invalid(
                f"version: the hub holds no release {asked.version!r}; add it first"
                " (hafen hub release add), or pick one of hafen hub release list"
            )
        doors = _targets(conn, target)
        if not doors:
            raise Invalid(
                f"{target.describe()} has no enrolled, unrevoked device to update;"
                " enrol one first, or target other sites"
            )
        if len(doors) > MAX_DEVICES:
            raise Invalid(
                f"{target.describe()} is {len(doors):,} devices; a rollout updates at most"
                f" {MAX_DEVICES:,}: split it by sites"
            )
        _refuse_downgrade(conn, asked, doors)
        _refuse_overlap(conn, doors)
        done = sorted(d for d, software in doors.items() if software == asked.version)
        todo = sorted(
            (d for d, software in doors.items() if software != asked.version),
            key=lambda d: _draw(asked.version, d),
        )
        sizes = stage_sizes(asked.stages, len(todo))
        state = RolloutState.RUNNING if todo else RolloutState.DONE
        rollout_id = conn.scalar(
            insert(db.rollouts)
            .values(
                version=asked.version,
                target=target.model_dump(),
                stages=asked.stages,
                stage_count=len(sizes),
                stage=1,
                max_failures=asked.max_failures,
                max_failure_share=asked.max_failure_share,
                accepted_failures=0,
                deadline_minutes=asked.deadline_minutes,
                state=state,
                created_by=who.username[:64],
                created_at=now,
                updated_at=now,
            )
            .returning(db.rollouts.c.id)
        )
        live = True if state in LIVE else None
        rows = [
            _row(rollout_id, door, 0, HEALTHY, "already on it", doors[door], now, live)
            for door in done
        ]
        stage = 1
        for i, door in enumerate(todo):
            while i >= sizes[stage - 1]:
                stage += 1
            rows.append(_row(rollout_id, door, stage, PENDING, "", doors[door], None, live))
        try:
            for i in range(0, len(rows), _ROWS_PER_INSERT):
                conn.execute(insert(db.rollout_devices), rows[i : i + _ROWS_PER_INSERT])
        except IntegrityError:
            # Another rollout took one of the doors between the check and the insert.
            raise Conflict(
                "another rollout took some of these devices just now; see the rollouts"
                " (hafen hub rollout list) and try again"
            ) from None
    return get_rollout(engine, who, int(rollout_id))


def pause_rollout(
    engine: Engine, who: Principal, rollout: int, now: datetime | None = None
) -> RolloutDetail:
    """Order no more doors (those ordered go on); Conflict unless it is running."""
    _steer(engine, who, rollout, (RolloutState.RUNNING,), RolloutState.PAUSED, now)
    return get_rollout(engine, who, rollout)


def resume_rollout(
    engine: Engine, who: Principal, rollout: int, now: datetime | None = None
) -> RolloutDetail:
    """Order doors again. The failures so far are accepted: the limits count only the ones
    after (else a rollout paused by its failures would pause again at once)."""
    _steer(engine, who, rollout, (RolloutState.PAUSED,), RolloutState.RUNNING, now)
    return get_rollout(engine, who, rollout)


def abort_rollout(
    engine: Engine, who: Principal, rollout: int, now: datetime | None = None
) -> RolloutDetail:
    """End it: no door is ordered again, and its doors are free for another rollout. Doors
    in the middle of their update finish it, and their reports are still recorded."""
    _steer(engine, who, rollout, LIVE, RolloutState.ABORTED, now)
    return get_rollout(engine, who, rollout)


@dataclass(frozen=True)
class Order:
    """A rollout's order to a door: the version the door ran when the rollout was made."""

    from_version: str | None


def order_for(engine: Engine, site: str, device: str, version: str) -> Order | None:
    """The latest order of a rollout to ``device`` at ``site`` to install ``version``, while
    the door is under way with it (what a door may download, and which manifest: the hub's
    device releases endpoint, hub.services.release_downloads). A door whose part ended
    (healthy, failed, past its deadline) downloads no more, whatever its rollout's state:
    an aborted rollout's doors under way finish."""
    rd, r = db.rollout_devices.c, db.rollouts.c
    query = (
        select(rd.from_version)
        .join(db.rollouts, r.id == rd.rollout_id)
        .where(rd.site == site, rd.device == device, r.version == version)
        .where(rd.ordered_at.is_not(None), rd.step.in_(UNDER_WAY))
        .order_by(rd.rollout_id.desc())
        .limit(1)
    )
    with engine.connect() as conn:
        row = conn.execute(query).one_or_none()
    return None if row is None else Order(row.from_version)


def ordered_release(engine: Engine, site: str, device: str, version: str) -> bool:
    """Whether a rollout ordered ``device`` at ``site`` to install ``version``."""
    return order_for(engine, site, device, version) is not None


def _steer(
    engine: Engine,
    who: Principal,
    rollout: int,
    states: tuple[RolloutState, ...],
    to: RolloutState,
    now: datetime | None,
) -> None:
    Scope(who).require_role(Role.NETWORK_ADMIN)
    now = now or datetime.now(UTC)
    r, rd = db.rollouts.c, db.rollout_devices.c
    values: dict[str, Any] = {"state": to, "updated_at": now}
    if to in (RolloutState.PAUSED, RolloutState.ABORTED):
        values["paused_reason"] = f"by {who.username}"[:300]
    if to == RolloutState.RUNNING:
        values["paused_reason"] = None
    with db.one_writer(engine), engine.begin() as conn:
        if to == RolloutState.RUNNING:
            values["accepted_failures"] = conn.scalar(
                select(func.count())
                .select_from(db.rollout_devices)
                .where(rd.rollout_id == rollout, rd.step.in_(FAILURES))
            )
        changed = conn.execute(
            update(db.rollouts).where(r.id == rollout, r.state.in_(states)).values(values)
        ).rowcount
        if not changed:
            state = conn.scalar(select(r.state).where(r.id == rollout))
            if state is None:
                raise NotFound(f"no rollout {rollout}")
            verb = {RolloutState.PAUSED: "pause", RolloutState.RUNNING: "resume"}.get(to, "abort")
            raise Conflict(f"rollout {rollout} is {state}: there is nothing to {verb}")
        if to not in LIVE:
            conn.execute(
                update(db.rollout_devices).where(rd.rollout_id == rollout).values(live=None)
            )


def _targets(conn: Connection, target: RolloutTarget) -> dict[tuple[str, str], str | None]:
    """The doors ``target`` reaches, each with the software it reported last: every
    enrolled, unrevoked device of the sites (or the network), and the devices named, which
    must be both."""
    d, s = db.devices.c, db.device_states.c
    query = select(d.site, d.id, d.enrolled_at, d.revoked_at, s.software).outerjoin(
        db.device_states, (s.site == d.site) & (s.device == d.id)
    )
    doors: dict[tuple[str, str], str | None] = {}
    whole = target.sites is None and target.devices is None
    if whole or target.sites:
        if target.sites:
            require_sites(conn, target.sites)
            query_sites = query.where(d.site.in_(sorted(set(target.sites))))
        else:
            query_sites = query
        for row in conn.execute(query_sites):
            if row.enrolled_at is not None and row.revoked_at is None:
                doors[(row.site, row.id)] = row.software
    for ref in sorted(set(target.devices or ())):
        site, device = ref.split("/", 1)
        named = conn.execute(query.where(d.site == site, d.id == device)).one_or_none()
        if named is None:
            raise Invalid(f"devices: no device {ref!r}; the fleet page lists them")
        if named.revoked_at is not None:
            raise Invalid(f"devices: {ref} is revoked; enrol it again before updating it")
        if named.enrolled_at is None:
            raise Invalid(f"devices: {ref} was never enrolled; enrol it first")
        doors[(site, device)] = named.software
    return doors


def _refuse_downgrade(
    conn: Connection, asked: RolloutIn, doors: Mapping[tuple[str, str], str | None]
) -> None:
    """Invalid, saying what to run, when a door runs a newer version than ``asked`` and the
    rollout is no rollback, or no rollback is held from that door's version."""
    newer: dict[str, list[tuple[str, str]]] = {}
    for door, software in sorted(doors.items()):
        if goes_back(software, asked.version):
            assert software is not None  # goes_back says so
            newer.setdefault(software, []).append(door)
    if not newer:
        return
    (site, device), first = min((held[0], version) for version, held in newer.items())
    count = sum(len(held) for held in newer.values())
    more = f", and {count - 1} more devices run a newer version too" if count > 1 else ""
    if not asked.rollback:
        raise Invalid(
            f"version: {site}/{device} runs {first}, newer than {asked.version}{more}; taking"
            ' doors back to an older version is a rollback: say so ("rollback": true; hafen'
            f" hub rollout start {asked.version} --rollback), or leave those devices out"
        )
    missing = sorted(set(newer) - rollbacks_held(conn, asked.version), key=Version)
    if missing:
        commands = "; ".join(
            f"hafen hub release rollback {asked.version} --from {version}" for version in missing
        )
        raise Invalid(
            f"version: the hub holds no signed rollback to {asked.version} from"
            f" {', '.join(missing)}, which {_count(newer, missing)}; make it first"
            f" ({commands})"
        )


def _count(newer: Mapping[str, list[tuple[str, str]]], versions: list[str]) -> str:
    doors = sorted(door for version in versions for door in newer[version])
    if len(doors) == 1:
        return f"{doors[0][0]}/{doors[0][1]} runs"
    return f"{len(doors)} devices run (such as {doors[0][0]}/{doors[0][1]})"


def _refuse_overlap(conn: Connection, doors: Mapping[tuple[str, str], object]) -> None:
    """Conflict naming the live rollout that holds one of ``doors`` already."""
    rd, r = db.rollout_devices.c, db.rollouts.c
    held = conn.execute(
        select(rd.site, rd.device, rd.rollout_id, r.version, r.state)
        .join(db.rollouts, r.id == rd.rollout_id)
        .where(rd.live.is_(True))
    )
    taken = [row for row in held if (row.site, row.device) in doors]
    if taken:
        first = taken[0]
        more = f" (and {len(taken) - 1} more devices)" if len(taken) > 1 else ""
        raise Conflict(
            f"{first.site}/{first.device}{more} is in rollout {first.rollout_id} ({first.state},"
            f" version {first.version}); let it finish or abort it first, or leave those"
            " devices out"
        )


def _draw(version: str, door: tuple[str, str]) -> bytes:
    """Each door's place in the rollout's order: fixed for a version, spread across sites."""
    return hashlib.sha256(f"{version}\n{door[0]}/{door[1]}".encode()).digest()


def _row(
    rollout: int,
    door: tuple[str, str],
    stage: int,
    step: str,
    detail: str,
    software: str | None,
    at: datetime | None,
    live: bool | None,
) -> dict[str, Any]:
    history = [{"step": step, "at": at.isoformat(), "detail": detail}] if at else []
    return {
        "rollout_id": rollout,
        "site": door[0],
        "device": door[1],
        "stage": stage,
        "step": step,
        "detail": detail,
        "from_version": software,
        "step_at": at,
        "history": history,
        "live": live,
    }
