"""The edge agent: reader, decisions, outbox and door, run on one loop thread.

Inputs (cards, contact, exit button, reader faults) arrive from driver threads and are queued;
the loop handles them one at a time, so the door logic never races itself. A decision is
committed to the outbox before the strike moves.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from edge.agent.config import EdgeConfig
from edge.agent.decision import AccessPolicy, Decision
from edge.agent.door_logic import DoorLogic
from edge.agent.store import EdgeStore
from edge.drivers.door import DoorHardware
from edge.drivers.nfc_reader import CardRead, NfcReader
from hafen.cards import card_hash, short
from hafen.protocol import DeviceFault

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _DoorEvent:
    name: str  # "opened", "closed", "exit"


@dataclass(frozen=True)
class _ReaderFault:
    fault: str | None


_STOP = object()


class EdgeAgent:
    """Runs one door of one site from its config and local store."""

    def __init__(
        self,
        cfg: EdgeConfig,
        store: EdgeStore,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        heartbeat: Callable[[], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self.store = store
        self._wall_clock = wall_clock
        self._heartbeat = heartbeat
        self._key = cfg.cards.key()
        self.policy = AccessPolicy(cfg.site.id, ZoneInfo(cfg.site.timezone))
        self._inbox: queue.SimpleQueue[object] = queue.SimpleQueue()
        self.hardware = DoorHardware(
            cfg.door,
            on_open=lambda: self._inbox.put(_DoorEvent("opened")),
            on_close=lambda: self._inbox.put(_DoorEvent("closed")),
            on_exit=lambda: self._inbox.put(_DoorEvent("exit")),
        )
        self.door = DoorLogic(cfg.door, self.hardware, self._record)
        self.reader = NfcReader(
            cfg.reader.path,
            on_card=self._inbox.put,
            on_fault=lambda fault: self._inbox.put(_ReaderFault(fault)),
            targets=cfg.reader.targets,
            poll_interval=cfg.reader.poll_interval,
            removal_polls=cfg.reader.removal_polls,
            reconnect_max_seconds=cfg.reader.reconnect_max_seconds,
        )
        self._thread: threading.Thread | None = None
        self.decisions = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="edge-agent", daemon=True)
        self._thread.start()
        self.reader.start()

    def stop(self) -> None:
        """Stop reading, finish queued work, and leave the door in its configured fail state."""
        self.reader.stop()
        self._inbox.put(_STOP)
        if self._thread:
            self._thread.join(10)
        self.hardware.close()

    def decide(self, card: str) -> Decision:
        """Decide for a card hash and commit the decision to the outbox, in one transaction."""
        now = self._wall_clock()
        with self.store.write() as conn:
            decision = self.policy.decide(conn, card, now)
            self.store.append_event(conn, decision.payload(card), now)
        self.decisions += 1
        return decision

    # -- the loop -------------------------------------------------------------------------------
    def _run(self) -> None:
        heartbeat_due = 0.0
        while True:
            now = time.monotonic()
            if self._heartbeat and now >= heartbeat_due:
                self._heartbeat()
                heartbeat_due = now + 5.0
            deadline = self.door.next_deadline()
            wait = 1.0 if deadline is None else max(0.0, min(1.0, deadline - now))
            try:
                item = self._inbox.get(timeout=wait)
            except queue.Empty:
                item = None
            if item is _STOP:
                return
            try:
                if item is not None:
                    self._handle(item)
                self.door.tick(time.monotonic())
            except Exception:
                log.exception("the agent failed to handle %s", type(item).__name__)

    def _handle(self, item: object) -> None:
        now = time.monotonic()
        if isinstance(item, CardRead):
            card = card_hash(self._key, item.uid)
            decision = self.decide(card)
            if decision.allowed:
                self.door.allow(now)
            else:
                self.door.deny()
            log.info("%s %s", short(card), "allowed" if decision.allowed else decision.reason)
        elif isinstance(item, _DoorEvent):
            handler = {
                "opened": self.door.door_opened,
                "closed": self.door.door_closed,
                "exit": self.door.exit_pressed,
            }[item.name]
            handler(now)
        elif isinstance(item, _ReaderFault):
            self._record(DeviceFault(component="reader", fault=item.fault))
            self.hardware.signals.fault(item.fault is not None)

    def _record(self, payload: object) -> None:
        self.store.record_event(payload, self._wall_clock())
