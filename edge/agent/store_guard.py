"""The agent's side of a store that may fail: how the door decides and what it records then.

Three ways the store fails, three answers (docs/edge.md, "When the store fails"):

- **No access list** in a recovered store (before the hub's snapshot): the door decides by its
  fail mode, ``secure`` refuses and ``safe`` lets the card in, each recorded with the reason
  ``no_access_list``. (A door that never had a list, a new one, refuses every card as unknown:
  a fail-safe door is not to let everyone in before its site is set up.)
- **Cannot be written** (a full disk, a read-only or failing SD card): the list still decides
  and the door acts on it; the records are kept in memory, in order (at most
  ``MAX_UNRECORDED``; beyond that the oldest go, counted), and written as soon as the store
  takes writes again, which the housekeeping thread tries every few seconds. A ``store``
  fault is on the fault board meanwhile, and the door's retained state carries it to the hub
  (MQTT needs no disk). A member with a valid card gets in; what the door gives up is only
  that a record kept in memory is lost if the agent dies before the disk has room again.
- **Damaged** (SQLite says "malformed" or "not a database"): from then on the fail mode
  decides (``store_failed``), a ``store`` fault is on the board, and ``on_corrupt`` asks for a
  recovery (edge.agent.runner restarts the agent into it; edge.agent.recovery).

Everything here runs on the agent's loop thread.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from edge.agent.decision import AccessPolicy, Decision
from edge.agent.faults import FaultBoard
from edge.agent.recovery import RECOVERED_KEY, Recovery
from edge.agent.store import EdgeStore, new_event_id
from edge.agent.store_check import is_corruption
from hafen.protocol import DenyReason, DeviceFault, EventPayload, kind_of

log = logging.getLogger(__name__)

#: Door events kept in memory while the store cannot be written.
MAX_UNRECORDED = 10_000
#: While the store refuses writes, a tap tries them again at most this often.
RETRY_SECONDS = 1.0
COMPONENT = "store"


@dataclass(frozen=True)
class KeptEvent:
    """An event not yet written: named already, so writing it twice cannot happen."""

    event_id: str
    payload: EventPayload
    at: datetime


def fail_mode_decision(fail_mode: str, reason: DenyReason) -> Decision:
    """What a door decides when its list cannot: a fail-safe door lets the card in (it would
    stand open with the agent stopped anyway), a fail-secure one refuses."""
    return Decision(fail_mode == "safe", reason)


def has_access_list(conn: sqlite3.Connection) -> bool:
    """Whether an access list was ever applied to this store."""
    return conn.execute("SELECT 1 FROM meta WHERE key = 'acl_version'").fetchone() is not None


class StoreGuard:
    """Decides and records through the store, and keeps the door working when it fails."""

    def __init__(
        self,
        store: EdgeStore,
        fail_mode: str,
        faults: FaultBoard,
        clock: Callable[[], datetime],
        on_corrupt: Callable[[str], None] | None = None,
        on_written: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.fail_mode = fail_mode
        self.faults = faults
        self._clock = clock
        self._on_corrupt = on_corrupt
        self._on_written = on_written
        self.kept: list[KeptEvent] = []
        #: Kept events dropped (the oldest) since the store last took a write.
        self.dropped = 0
        self.corrupt: str | None = None
        self.write_error: str | None = None
        self._failed_at = 0.0
        recovery = Recovery.from_meta(_meta(store, RECOVERED_KEY))
        #: A recovered store's fault, shown until an access list is applied.
        self.recovered: str | None = recovery.fault() if recovery else None
        self.faults.set(COMPONENT, self.status())

    # -- deciding --------------------------------------------------------------------------------
    def decide(self, policy: AccessPolicy, card: str, now: datetime) -> Decision:
        """Decide from one snapshot of the list; by the fail mode if there is none to read."""
        if self.corrupt is not None:
            return fail_mode_decision(self.fail_mode, DenyReason.STORE_FAILED)
        try:
            with self.store.read() as conn:
                if self.recovered is not None and not has_access_list(conn):
                    return fail_mode_decision(self.fail_mode, DenyReason.NO_ACCESS_LIST)
                return policy.decide(conn, card, now)
        except sqlite3.Error as exc:
            log.error("could not read the access list: %s", exc)
            if is_corruption(exc):
                self.corrupted(str(exc))
            return fail_mode_decision(self.fail_mode, DenyReason.STORE_FAILED)

    # -- recording -------------------------------------------------------------------------------
    def record(self, *events: tuple[EventPayload, datetime]) -> None:
        """Write the kept events and then ``events``, in order, in one transaction; if the
        store fails, keep them all for the next try (while it keeps failing, at most once
        every RETRY_SECONDS, and on each tick). Never raises a store error."""
        self.kept += [KeptEvent(new_event_id(), payload, at) for payload, at in events]
        if self.write_error is not None and time.monotonic() - self._failed_at < RETRY_SECONDS:
            # The store refuses writes (a full disk): a tap does not wait for a retry of up to
            # MAX_UNRECORDED kept events more than once every RETRY_SECONDS.
            self._bound_kept()
            return
        self._try_write()

    def tick(self) -> None:
        """Try the kept events again (space may be back); clear a recovery's fault once an
        access list is in. Called every few seconds and when a list was applied."""
        if self.kept and self.corrupt is None:
            self._try_write()
        if self.recovered is not None and self.status() == self.recovered and self._has_list():
            self.recovered = None
            self._status_changed()
            self._try_write(also=lambda conn: self.store.delete_meta(conn, RECOVERED_KEY))

    def flush(self) -> None:
        """A last try to write the kept events (the agent is stopping)."""
        if self.kept and self.corrupt is None:
            self._try_write()

    @property
    def needs_tick(self) -> bool:
        """Read from the housekeeping thread: whether ``tick`` has anything to do."""
        return bool(self.kept) or self.recovered is not None

    def corrupted(self, reason: str) -> None:
        """The store is damaged: decide by the fail mode from now on, report, ask for recovery."""
        if self.corrupt is not None:
            return
        log.error("the store is damaged: %s", reason)
        self.corrupt = reason
        self._status_changed()
        self._try_write()  # the fault event may still go in: it is salvaged with the rest
        if self._on_corrupt is not None:
            self._on_corrupt(reason)

    def unwritten(self) -> list[tuple[str, str, datetime, str]]:
        """The kept events as (event_id, kind, time, JSON body), for edge.agent.recovery."""
        return [
            (
                e.event_id,
                kind_of(e.payload).value,
                e.at,
                e.payload.model_dump_json(exclude_none=True),
            )
            for e in self.kept
        ]

    def status(self) -> str | None:
        """The store's fault as the board shows it, None when all is well."""
        if self.corrupt is not None:
            return f"damaged ({self.corrupt[:80]}): restarting to recover"
        if self.write_error is not None:
            text = f"cannot write ({self.write_error[:80]}): events kept in memory"
            return text + ", the oldest dropped" if self.dropped else text
        return self.recovered

    def _try_write(self, also: Callable[[sqlite3.Connection], None] | None = None) -> None:
        try:
            with self.store.write() as conn:
                for event in self.kept:
                    self.store.append_event(conn, event.payload, event.at, event.event_id)
                if also is not None:
                    also(conn)
        except sqlite3.Error as exc:
            self._write_failed(exc)
            return
        written = len(self.kept)
        self.kept.clear()
        if self.write_error is not None:
            log.warning("the store takes writes again: %d kept events written", written)
            self.write_error, self.dropped = None, 0
            if self._status_changed():
                self._try_write()
        if self._on_written is not None:
            self._on_written()

    def _write_failed(self, exc: sqlite3.Error) -> None:
        self._failed_at = time.monotonic()
        if is_corruption(exc):
            self.corrupted(str(exc))
        elif self.write_error is None:
            log.error("cannot write the store (%s): keeping events in memory", exc)
            self.write_error = str(exc)
            self._status_changed()
        self._bound_kept()

    def _bound_kept(self) -> None:
        if len(self.kept) > MAX_UNRECORDED:
            drop = len(self.kept) - MAX_UNRECORDED
            log.error("more than %d events kept: dropping the oldest %d", MAX_UNRECORDED, drop)
            del self.kept[:drop]
            self.dropped += drop
            self._status_changed()

    def _status_changed(self) -> bool:
        """Show the status on the board; a change is recorded as a ``device.fault`` event
        (kept with the rest: the caller writes). Returns whether it changed."""
        text = self.status()
        if not self.faults.set(COMPONENT, text):
            return False
        fault = DeviceFault(component=COMPONENT, fault=text)
        self.kept.append(KeptEvent(new_event_id(), fault, self._clock()))
        return True

    def _has_list(self) -> bool:
        try:
            with self.store.read() as conn:
                return has_access_list(conn)
        except sqlite3.Error:
            return False


def _meta(store: EdgeStore, key: str) -> str | None:
    try:
        return store.get_meta(key)
    except sqlite3.Error:
        return None
