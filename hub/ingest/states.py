"""Device states as ingest keeps them: only a door's own, and only in the order it lives them.

A state says whether a door is online and which access list it holds; the hub acts on it
(hub.list_watch chases doors that lag, the fleet page reports them, hub.acl_catch_up sends
snapshots). Anyone on the broker can publish a retained state on a door's topic (issue 13):
one with an absurd session number pinned a real door "offline" after it restarted, and one
saying "online on the newest list" hid a door that was not. So a state is kept only when:

- **it is the door's own**: it carries the door's proof (hafen.device_proof, an HMAC with a
  key derived from the network's card key for this site and device). Without the card key
  (``card_key`` None) no state can be checked: all are refused.
- **its session fits**: within the door's store (the same epoch, or either unknown) a state
  is kept if its session is the stored one or later, by at most ``MAX_SESSION_JUMP`` (the
  edge counts sessions as boot * 1,000,000 + connections, edge.agent.link; this allows
  10,000 boots between two states). An earlier session's state (a late will) is ignored, as
  is a birth of a session whose will or goodbye the hub already has. A state of another
  epoch (a recovered store starts counting again) is kept if it is a birth of a store the
  door has not left; a will of another store says nothing about the running one and is
  ignored, and so is any state of a store the door has left (the hub keeps the last
  ``MAX_LEFT_EPOCHS``): those are replays, which anyone can make from what the broker kept.

A refused state (no proof, a wrong one, a jump) changes nothing but the door's count of
refused states and when the last came (the fleet page shows it: a third party is on the
broker). Ignored ones are not counted: late wills and replays of the door's own states
happen without anyone attacking. Only registered devices reach this book (hub.ingest.screen).

A will carries no list versions: the stored ones are kept, within the same epoch.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from sqlalchemy import Connection, Engine, and_, or_, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite

from hafen.device_proof import device_key, state_is_genuine
from hafen.protocol import DeviceState
from hub import db
from hub.ingest.batch import StateReport
from hub.rate_limits import Spacing

log = logging.getLogger(__name__)

#: The most a door's session may grow between two states it publishes: 10,000 boots.
MAX_SESSION_JUMP = 10_000 * 1_000_000
#: The stores a device has left that the hub remembers (a store is left when it is damaged).
MAX_LEFT_EPOCHS = 16
#: Refused states of one device are logged at most this often.
LOG_EVERY_SECONDS = 60.0


class Verdict(Enum):
    KEEP = "keep"
    IGNORE = "ignore"
    REFUSE = "refuse"


@dataclass(frozen=True)
class Stored:
    """What the hub holds of a device's state (``session`` None: no state of its own yet)."""

    online: bool | None
    session: int | None
    epoch: str | None
    software: str | None = None
    acl_version: int | None = None
    seen_version: int | None = None
    left_epochs: tuple[str, ...] = ()


def judge(stored: Stored | None, state: DeviceState) -> tuple[Verdict, str]:
    """Whether a genuine ``state`` follows what is stored (see the module's text)."""
    if stored is None or stored.session is None:
        return Verdict.KEEP, "the first"
    if state.epoch is not None and state.epoch in stored.left_epochs:
        return Verdict.IGNORE, "a state of a store the door has left"
    if stored.epoch is not None and state.epoch is not None and stored.epoch != state.epoch:
        if state.online:
            return Verdict.KEEP, "the birth of another store"
        return Verdict.IGNORE, "a will of another store"
    if state.session < stored.session:
        return Verdict.IGNORE, "an earlier session's"
    if state.session > stored.session + MAX_SESSION_JUMP:
        jump = state.session - stored.session
        return Verdict.REFUSE, f"its session jumps by {jump} (at most {MAX_SESSION_JUMP})"
    if state.session == stored.session and state.online and stored.online is False:
        return Verdict.IGNORE, "a birth of a session that has ended"
    return Verdict.KEEP, "the next"


class StateBook:
    """Checks and writes the states of a batch (registered devices only)."""

    def __init__(self, engine: Engine, card_key: bytes | None) -> None:
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"
        self._insert = postgresql.insert if self.postgres else sqlite.insert
        self._card_key = card_key
        self._keys: dict[tuple[str, str], bytes] = {}
        self._log_spacing = Spacing(LOG_EVERY_SECONDS)
        #: States refused and ignored since the start.
        self.refused = 0
        self.ignored = 0

    def record(self, reports: list[StateReport], now: datetime) -> list[StateReport]:
        """Keep what is to be kept, count what is refused; the kept states, in order."""
        if not reports:
            return []
        devices = sorted({(r.site, r.device) for r in reports})
        kept: list[StateReport] = []
        newest: dict[tuple[str, str], tuple[DeviceState, Stored | None]] = {}
        refused: dict[tuple[str, str], int] = {}
        with self.engine.begin() as conn:
            stored = _stored(conn, devices)
            for report in reports:
                key = (report.site, report.device)
                verdict, why = self._judge(report, stored.get(key))
                if verdict is Verdict.REFUSE:
                    refused[key] = refused.get(key, 0) + 1
                    self._log_refusal(report, why)
                elif verdict is Verdict.IGNORE:
                    self.ignored += 1
                else:
                    before = stored.get(key)
                    newest[key] = (report.state, before)
                    stored[key] = _as_stored(report.state, before)
                    kept.append(report)
            for (site, device), (state, before) in newest.items():
                self._write(conn, site, device, state, before, now)
            for (site, device), count in refused.items():
                self._count_refused(conn, site, device, count, now)
        self.refused += sum(refused.values())
        return kept

    def _judge(self, report: StateReport, stored: Stored | None) -> tuple[Verdict, str]:
        if self._card_key is None:
            return Verdict.REFUSE, "no card key to check its proof with"
        key = self._keys.get((report.site, report.device))
        if key is None:
            key = device_key(self._card_key, report.site, report.device)
            if len(self._keys) >= 100_000:
                self._keys.clear()
            self._keys[(report.site, report.device)] = key
        if report.state.proof is None:
            return Verdict.REFUSE, "it carries no proof"
        if not state_is_genuine(key, report.site, report.device, report.state):
            return Verdict.REFUSE, "its proof is wrong"
        return judge(stored, report.state)

    def _log_refusal(self, report: StateReport, why: str) -> None:
        key = (report.site, report.device)
        if self._log_spacing.wait(key) == 0:
            self._log_spacing.mark(key)
            log.warning(
                "refused a state published as %s.%s: %s (someone else on the broker speaks"
                " as this device; more are counted, logged at most once a minute)",
                report.site,
                report.device,
                why,
            )

    def _write(
        self,
        conn: Connection,
        site: str,
        device: str,
        state: DeviceState,
        before: Stored | None,
        now: datetime,
    ) -> None:
        s = db.device_states.c
        values = _values(state, before, now)
        stmt = self._insert(db.device_states).values(site=site, device=device, **values)
        # Two workers may take two states of one door at once: never go back a session
        # within a store, whoever commits last.
        same_store = (
            or_(s.epoch.is_(None), s.epoch == state.epoch) if state.epoch is not None else None
        )
        earlier = s.session > state.session
        regress = and_(same_store, earlier) if same_store is not None else earlier
        stmt = stmt.on_conflict_do_update(
            index_elements=["site", "device"],
            set_=values,
            where=or_(s.session.is_(None), ~regress),
        )
        conn.execute(stmt)

    def _count_refused(
        self, conn: Connection, site: str, device: str, count: int, now: datetime
    ) -> None:
        s = db.device_states.c
        stmt = self._insert(db.device_states).values(
            site=site, device=device, takeovers=0, refused_states=count, refused_at=now
        )
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["site", "device"],
                set_={"refused_states": s.refused_states + count, "refused_at": now},
            )
        )


def _stored(conn: Connection, devices: list[tuple[str, str]]) -> dict[tuple[str, str], Stored]:
    s = db.device_states.c
    rows = conn.execute(
        select(
            s.site, s.device, s.online, s.session, s.epoch,
            s.software, s.acl_version, s.seen_version, s.left_epochs,
        ).where(tuple_(s.site, s.device).in_(devices))
    )  # fmt: skip
    return {
        (r.site, r.device): Stored(
            r.online,
            r.session,
            r.epoch,
            r.software,
            r.acl_version,
            r.seen_version,
            tuple(str(e) for e in r.left_epochs or ())[-MAX_LEFT_EPOCHS:],
        )
        for r in rows
    }


def _same_store(state: DeviceState, before: Stored | None) -> bool:
    return before is not None and (
        before.epoch is None or state.epoch is None or before.epoch == state.epoch
    )


def _values(state: DeviceState, before: Stored | None, now: datetime) -> dict[str, Any]:
    """The columns a kept state writes."""
    return {
        **_columns(state, before),
        "takeovers": state.takeovers,
        "faults": dict(state.faults),
        "uptime_seconds": state.uptime_seconds,
        "reported_at": state.at,
        "received_at": now,
    }


def _columns(state: DeviceState, before: Stored | None) -> dict[str, Any]:
    """What a kept state says of the door; within one store, what a will leaves out (the list
    versions, the software) stays as the door last said it."""
    keep = before if before is not None and _same_store(state, before) else None
    return {
        "online": state.online,
        "session": state.session,
        "epoch": _or(state.epoch, keep.epoch if keep else None),
        "software": _or(state.software, keep.software if keep else None),
        "acl_version": _or(state.acl_version, keep.acl_version if keep else None),
        "seen_version": _or(state.seen_version, keep.seen_version if keep else None),
        "left_epochs": list(_left_epochs(state, before)),
    }


def _left_epochs(state: DeviceState, before: Stored | None) -> tuple[str, ...]:
    """The stores left, with the stored one when ``state`` is of another store."""
    if before is None:
        return ()
    left = before.left_epochs
    if before.epoch is not None and state.epoch is not None and before.epoch != state.epoch:
        left = (*left, before.epoch)
    return left[-MAX_LEFT_EPOCHS:]


def _or(value: Any, old: Any) -> Any:
    return old if value is None else value


def _as_stored(state: DeviceState, before: Stored | None) -> Stored:
    columns = _columns(state, before)
    return Stored(**{**columns, "left_epochs": tuple(columns["left_epochs"])})
