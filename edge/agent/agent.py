"""The edge agent: reader, decisions, outbox and door, run on one loop thread.

Inputs (cards, contact, exit button, reader faults) arrive from driver threads and are queued;
the loop handles them one at a time, so the door logic never races itself. A decision is
committed to the outbox before the strike moves, unless the store cannot be written: then it is
kept in memory until it can (edge.agent.store_guard says why).
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from edge.agent.config import EdgeConfig
from edge.agent.decision import AccessPolicy, Decision
from edge.agent.door_logic import DoorLogic
from edge.agent.faults import FaultBoard
from edge.agent.housekeeping import DiskRoom, Housekeeping, StoreDamaged, StoreTick
from edge.agent.occupancy_service import OccupancyService
from edge.agent.reserve import FULL
from edge.agent.store import EdgeStore
from edge.agent.store_guard import StoreGuard
from edge.drivers.door import DoorHardware
from edge.drivers.nfc_reader import CardRead, NfcReader
from hafen import __version__, protocol
from hafen.cards import card_hash, short
from hafen.protocol import (
    DeviceFault,
    EventPayload,
    LiveState,
    OccupancySample,
    encode_json,
)

if TYPE_CHECKING:  # the MQTT side (paho, cryptography) loads only for a networked door
    from edge.agent.hub_commands import HubCommands, Orders
    from edge.agent.link import EdgeLink
    from edge.agent.remote import AclUpdater, CommandGate
    from edge.agent.renewal import CertificateRenewal

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _DoorEvent:
    name: str  # "opened", "closed", "exit"


@dataclass(frozen=True)
class _ReaderFault:
    fault: str | None


@dataclass(frozen=True)
class _Command:
    name: str
    payload: bytes


@dataclass(frozen=True)
class _Record:
    """An event another thread asks the loop to record (a session take-over); ``done`` is
    set once it is recorded, for one that waits (the updater's reports)."""

    payload: EventPayload
    done: threading.Event | None = None


_STOP = object()
#: Seconds a thread may hold the GIL before a waiting one gets it (Python's default is 0.005).
SWITCH_INTERVAL = 0.0005
#: The fault of a hub ack beyond this store's last event.


class EdgeAgent:
    """Runs one door of one site from its config and local store."""

    def __init__(
        self,
        cfg: EdgeConfig,
        store: EdgeStore,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        heartbeat: Callable[[], None] | None = None,
        on_store_damaged: Callable[[str], None] | None = None,
        updates: Orders | None = None,
    ) -> None:
        self.cfg = cfg
        self._updates = updates
        self.store = store
        self._wall_clock = wall_clock
        self._heartbeat = heartbeat
        self._key = cfg.cards.key()
        self.policy = AccessPolicy(cfg.site.id, ZoneInfo(cfg.site.timezone))
        self._inbox: queue.SimpleQueue[object] = queue.SimpleQueue()
        #: What is wrong now; the door's state carries it to the hub.
        self.faults = FaultBoard(on_change=self._faults_changed)
        self.hardware = DoorHardware.from_settings(
            cfg.door,
            on_open=lambda: self._inbox.put(_DoorEvent("opened")),
            on_close=lambda: self._inbox.put(_DoorEvent("closed")),
            on_exit=lambda: self._inbox.put(_DoorEvent("exit")),
        )
        self.door = DoorLogic(cfg.door, self.hardware, self._record)
        self.reader = NfcReader.from_settings(
            cfg.reader,
            on_card=self._inbox.put,
            on_fault=lambda fault: self._inbox.put(_ReaderFault(fault)),
        )
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self.decisions = 0
        #: When the door's loop last went round (it does at least once a second).
        self.last_cycle = 0.0
        self.link: EdgeLink | None = None
        self.acl_updater: AclUpdater | None = None
        self.hub_commands: HubCommands | None = None
        self.command_gate: CommandGate | None = None
        self.renewal: CertificateRenewal | None = None
        self._extra_stores: list[EdgeStore] = []
        self._live: bytes | None = None
        #: Decides and records through the store, and keeps the door going when it fails;
        #: ``on_store_damaged`` is asked to recover a damaged store (edge.agent.runner).
        self.guard = StoreGuard(
            store,
            cfg.door.fail_mode,
            self.faults,
            clock=wall_clock,
            on_corrupt=on_store_damaged,
            on_written=self._wake_sender,
        )
        #: Checkpoints and checks the store, and has the loop retry what the guard keeps.
        self.housekeeping = Housekeeping(
            cfg.store, self._inbox.put, lambda: self.guard.needs_tick, self._stopping
        )
        self._door_shown: tuple[bool, bool] | None = None
        self.occupancy: OccupancyService | None = None
        if cfg.occupancy is not None:
            self.occupancy = OccupancyService(
                cfg.occupancy,
                self.policy.tz,
                self._inbox.put,
                self._record,
                self._show_live,
                started=wall_clock(),
            )
        #: Home Assistant's discovery configs, and empty ones for entities gone since.
        self._discovery: list[tuple[str, bytes]] = []
        if cfg.mqtt is not None and cfg.hub is not None:
            from edge.agent.home_assistant import discovery_plan

            self._discovery = discovery_plan(store, cfg.occupancy, *self._ids, __version__)
            self._connect_to_hub(cfg)

    def _connect_to_hub(self, cfg: EdgeConfig) -> None:
        """The MQTT link and the access-list updater, each on its own store connection."""
        from edge.agent.hub_commands import HubCommands
        from edge.agent.link import EdgeLink
        from edge.agent.remote import AclUpdater, CommandGate, CommandVerifier, command_router
        from edge.agent.renewal import CertificateRenewal, IdentityFiles, finish_interrupted
        from hafen.device_proof import device_key

        assert cfg.mqtt is not None and cfg.hub is not None
        identity = IdentityFiles.of(cfg.mqtt)
        if identity is not None:
            finish_interrupted(identity)  # before the link loads the pair
        trusted = cfg.hub.trusted()
        updater_store = EdgeStore(cfg.store.path, cfg.store.synchronous)
        # The sender reads the outbox tail and deletes: a small page cache is plenty.
        sender_store = EdgeStore(cfg.store.path, cfg.store.synchronous, cache_kib=256)
        self._extra_stores = [updater_store, sender_store]
        self.acl_updater = AclUpdater(
            updater_store,
            cfg.site.id,
            self.policy.tz,
            self._key,
            trusted,
            on_change=self._acl_changed,
            on_event=self._wake_sender,
            faults=self.faults,
        )
        updater = self.acl_updater
        self.command_gate = CommandGate()
        self.link = EdgeLink(
            cfg.mqtt,
            cfg.site.id,
            cfg.device.id,
            sender_store,
            on_acl=updater.submit,
            on_command=command_router(
                updater, self.command_gate, lambda name, data: self._inbox.put(_Command(name, data))
            ),
            acl_version=lambda: updater.version,
            proof_key=device_key(self._key, cfg.site.id, cfg.device.id),
            retained_on_connect=self._retained_on_connect,
            faults=self.faults,
            seen_version=lambda: updater.seen_version,
            record=lambda payload: self._inbox.put(_Record(payload)),
        )
        if identity is not None:
            self.renewal = CertificateRenewal(
                identity,
                cfg.site.id,
                cfg.device.id,
                self.link,
                record=lambda payload: self._inbox.put(_Record(payload)),
            )
        self.hub_commands = HubCommands(
            CommandVerifier(cfg.site.id, cfg.device.id, trusted, self.store),
            self.link,
            self.door,
            self.store,
            self.faults,
            self._record,
            cfg.door.unlock_seconds,
            self._wall_clock,
            self.renewal,
            self._updates,
        )

    def start(self) -> None:
        # The door's loop shares the interpreter with the list updater, which parses and writes
        # a 100,000-card snapshot for seconds of pure Python. At the default 5 ms switch
        # interval each of a tap's dozen GIL hand-backs could wait a full slice (p99 63 ms,
        # worst 0.5 s while a snapshot applied); at 0.5 ms a tap's p99 stays under 10 ms.
        sys.setswitchinterval(SWITCH_INTERVAL)
        self._thread = threading.Thread(target=self._run, name="edge-agent", daemon=True)
        self._thread.start()
        self.housekeeping.start()
        self.reader.start()
        if self.occupancy:
            self.occupancy.start()
        if self.link and self.acl_updater:
            self.acl_updater.start()
            self.link.start()
        if self.renewal:
            self.renewal.start()

    def stop(self) -> None:
        """Stop reading, finish queued work, and leave the door in its configured fail state."""
        self._stopping.set()
        self.reader.stop()
        self._inbox.put(_STOP)
        if self._thread:
            self._thread.join(10)
        if self._thread is None or not self._thread.is_alive():
            self.guard.flush()
        if self.occupancy:
            self.occupancy.stop()
        self.hardware.close()
        if self.renewal:
            self.renewal.stop()  # before the link: a renewal may be switching its client
        if self.link and self.acl_updater:
            self.link.stop()
            self.acl_updater.stop()
        for store in self._extra_stores:
            store.close()

    def decide(self, card: str) -> Decision:
        """Decide for a card hash from one snapshot of the list (by the fail mode if there is
        none to read), and commit it to the outbox (or keep it, if the store cannot be written)."""
        now = self._wall_clock()
        decision = self.guard.decide(self.policy, card, now)
        self.guard.record((decision.payload(card), now))
        self.decisions += 1
        return decision

    # -- the loop -------------------------------------------------------------------------------
    def _run(self) -> None:
        heartbeat_due = 0.0
        self.door.start(time.monotonic())
        while True:
            self.last_cycle = now = time.monotonic()
            if self._heartbeat and now >= heartbeat_due and self._healthy():
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
                if self.occupancy:
                    self._occupancy_tick()
            except Exception:
                log.exception("the agent failed to handle %s", type(item).__name__)

    def _healthy(self) -> bool:
        """Feed the watchdog only while the reader thread is not wedged in a driver call."""
        return self.reader.alive(within=max(60.0, 2 * self.cfg.reader.reconnect_max_seconds))

    def _handle(self, item: object) -> None:
        now = time.monotonic()
        if isinstance(item, CardRead):
            card = card_hash(self._key, item.uid)
            decision = self.decide(card)  # store failures decide by the fail mode: no raise
            if decision.allowed:
                self.door.allow(now)
                if self.occupancy:
                    self.occupancy.tap_allowed(self._wall_clock())
            else:
                self.door.deny()
            outcome = "allowed" if decision.allowed else "refused"
            if decision.reason:  # a fail-safe door lets cards in with a reason: no list decided
                outcome += f" ({decision.reason})"
            log.info("%s %s", short(card), outcome)
        elif isinstance(item, _DoorEvent):
            handler = {
                "opened": self.door.door_opened,
                "closed": self.door.door_closed,
                "exit": self.door.exit_pressed,
            }[item.name]
            handler(now)
            if self.occupancy:
                self.occupancy.door(item.name, self._wall_clock())
        elif isinstance(item, _ReaderFault):
            self._record(DeviceFault(component="reader", fault=item.fault))
            self.hardware.signals.fault(item.fault is not None)
        elif isinstance(item, _Command):
            if self.command_gate:
                self.command_gate.done()
            assert self.hub_commands is not None
            self.hub_commands.handle(item.name, item.payload, now)
        elif isinstance(item, _Record):
            self._record(item.payload)
            if item.done is not None:
                item.done.set()
        elif isinstance(item, StoreTick):
            self.guard.tick()
        elif isinstance(item, StoreDamaged):
            self.guard.corrupted(item.reason)
        elif isinstance(item, DiskRoom):
            self._record(DeviceFault(component="disk", fault=None if item.room else FULL))
        elif self.occupancy:
            self.occupancy.handle(item, self._wall_clock())

    def _occupancy_tick(self) -> None:
        """A sample when one is due; else the live state again if only the door changed."""
        assert self.occupancy is not None
        sample = self.occupancy.tick(self._wall_clock())
        last = self.occupancy.last
        if sample is None and last is not None and self._door_shown != self._door_state():
            self._show_live(last)

    def _door_state(self) -> tuple[bool, bool]:
        return not self.hardware.strike.is_unlocked, self.hardware.door_open

    def _show_live(self, sample: OccupancySample) -> None:
        """Retain the newest sample and the door's state for live views."""
        self._door_shown = locked, is_open = self._door_state()
        live = LiveState(
            **sample.model_dump(), at=self._wall_clock(), door_locked=locked, door_open=is_open
        )
        self._live = encode_json(live)
        if self.link and self.link.connected:
            self.link.publish_retained(protocol.occupancy_topic(*self._ids), self._live)

    def _retained_on_connect(self) -> list[tuple[str, bytes]]:
        messages = list(self._discovery)
        if self._live is not None:
            messages.append((protocol.occupancy_topic(*self._ids), self._live))
        return messages

    @property
    def _ids(self) -> tuple[str, str]:
        return self.cfg.site.id, self.cfg.device.id

    def _faults_changed(self) -> None:
        if self.link and self.link.connected:
            self.link.publish_state()

    def _acl_changed(self) -> None:
        if self.link and self.link.connected:
            self.link.publish_state()
        self._wake_sender()
        self._inbox.put(StoreTick())  # a recovered store's fault ends with its first list

    def _wake_sender(self) -> None:
        if self.link:
            self.link.sender.wake()

    def record_and_wait(self, payload: EventPayload, timeout: float = 30.0) -> bool:
        """Record an event from another thread; returns once the loop has (True) or after
        ``timeout`` (False). Kept by the guard counts as recorded: it is written later."""
        done = threading.Event()
        self._inbox.put(_Record(payload, done))
        return done.wait(timeout)

    def _record(self, payload: EventPayload) -> None:
        """Record a door event; if the store fails, it is kept and written later (StoreGuard).

        A fault is also put on the fault board, so the state shows it even if the store fails.
        """
        if isinstance(payload, DeviceFault):
            self.faults.set(payload.component, payload.fault)
        self.guard.record((payload, self._wall_clock()))
