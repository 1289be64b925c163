"""The ingest worker: stores every edge event exactly once, fast, and tells devices how far.

Several workers share the load through a shared subscription. Messages are taken in batches,
written in one transaction (idempotent by ``event_id``, one event per place), and acknowledged
to the broker only after the commit, so a worker that dies loses nothing. After each batch the
worker works out, per device, up to which ``seq`` every event is stored, and sends the device
a signed ``ack`` so it can forget those events.

The worker orchestrates; the rules live beside it: what a message is (hub.ingest.batch), what
to believe of it (hub.ingest.screen: registered devices, plausible seqs, members and
headcounts), which states are a door's own (hub.ingest.states), how many refusals are kept
(hub.ingest.dead_letters), and how it is written (hub.ingest.store).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine
from sqlalchemy.exc import DataError, IntegrityError

from hafen import protocol
from hafen.protocol import DeviceState
from hub import ingest_beats
from hub.commands import command_message
from hub.ingest.batch import Batch, classify, dead_letter
from hub.ingest.dead_letters import DeadLetterLimiter
from hub.ingest.screen import Screen
from hub.ingest.states import StateBook
from hub.ingest.store import IngestStore
from hub.mqtt import BrokerLogin, HubClient

log = logging.getLogger(__name__)
#: What places an event in its device's sequence.
PLACE = ("event_id", "site", "device", "epoch", "seq")

DEFAULT_GROUP = "hafen-ingest"
#: How long a stopping worker goes on storing the messages it was sent (the store may be slow).
DRAIN_SECONDS = 10.0


class IngestWorker:
    """One ingest worker process (or thread): subscribe, batch, store, acknowledge."""

    def __init__(
        self,
        engine: Engine,
        host: str,
        port: int,
        key: Ed25519PrivateKey,
        name: str = "1",
        group: str = DEFAULT_GROUP,
        batch_size: int = 5000,
        batch_wait: float = 0.02,
        ack_interval: float = 0.5,
        on_state: Callable[[str, str, DeviceState], None] | None = None,
        mirror: Callable[[list[dict]], None] | None = None,
        *,
        card_key: bytes | None = None,
        login: BrokerLogin | None = None,
    ) -> None:
        """``card_key``: the network's card-hash key, from which each door's state proof key
        is derived (hafen.device_proof); without it no state can be checked, and all are
        refused. ``login``: ingest's own client at the broker (and TLS)."""
        self.store = IngestStore(engine)
        self.screen = Screen(engine)
        self.states = StateBook(engine, card_key)
        self.dead_letters = DeadLetterLimiter()
        self._checks_states = card_key is not None
        self.name = name
        #: Called with each stored batch's events after the commit (the InfluxDB sink, say).
        self._mirror = mirror
        self.key = key
        self.batch_size = batch_size
        self.batch_wait = batch_wait
        self.ack_interval = ack_interval
        self._on_state = on_state
        self._queue: queue.SimpleQueue[mqtt.MQTTMessage] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"ingest-{name}", daemon=True)
        self._acks_due: dict[tuple[str, str, str], int] = {}
        self._retry: list[mqtt.MQTTMessage] = []
        self._states = _NewestStates()
        self._acks_sent_at = 0.0
        self.stored = 0
        #: The connection this worker last beat for (hub.ingest_beats): count and start.
        self._connection, self._beat_at = 0, 0.0
        self._up_since: datetime | None = None
        #: Until when a stopping worker goes on storing what it was sent; whether it did.
        self._drain_until, self._drained = 0.0, False
        self.client = HubClient(
            host,
            port,
            client_id=f"hafen-ingest-{name}",
            subscriptions=[
                (protocol.shared(group, protocol.ALL_EVENTS), 1),
                (protocol.shared(group, protocol.ALL_STATES), 1),
            ],
            on_message=self._queue.put,
            manual_ack=True,
            session_expiry=3600,
            login=login,
            # MQTT 3.1.1: paho builds a v5 Properties object for every message received and
            # acknowledged, a quarter of the worker's time; shared subscriptions work alike.
            protocol=mqtt.MQTTv311,
        )

    def start(self) -> None:
        if not self._checks_states:
            log.warning(
                "ingest worker %s has no card key: no device state can be checked, so all are"
                " refused (doors show as never reported)",
                self.name,
            )
        self._thread.start()
        threading.Thread(target=self._report_states, name="ingest-states", daemon=True).start()
        self.client.start()

    def stop(self, drain: float = DRAIN_SECONDS) -> bool:
        """Leave the group, store what it was sent (within ``drain`` seconds), then stop;
        returns whether it said it is gone.

        Only a worker that left with nothing unstored says it is gone (hub.ingest_beats): the
        broker keeps routing taps to a subscribed worker's session while it is away, and
        what it was sent but did not store waits there too, so the sweep must wait for it."""
        left = self.client.leave()
        self._drain_until = time.monotonic() + drain
        self._stop.set()
        self._thread.join(drain + 10)
        self._states.close()
        self.client.stop()
        if not (left and self._drained):
            log.warning("ingest worker %s stopped with taps it has not stored", self.name)
            return False  # its row goes silent, which holds the sweep until it is back
        try:
            ingest_beats.gone(self.store.engine, self.name)
        except Exception:  # the store is away: the row goes silent, which holds the sweep
            log.warning("ingest worker %s could not say it stopped", self.name)
            return False
        return True

    def _pending(self) -> bool:
        """Whether messages the broker sent this worker wait to be stored."""
        return bool(self._retry) or not self._queue.empty()

    def _run(self) -> None:
        while not self._stop.is_set() or (self._pending() and time.monotonic() < self._drain_until):
            self._beat()
            messages = self._take_batch()
            try:
                if messages:
                    self._ingest(messages)
                self._send_acks()
                self.dead_letters.tick()
            except Exception:
                if messages and self._store_answers():
                    # The store is up, so the batch itself failed: a message that fails the
                    # same way every time must not hold up everything after it.
                    self._ingest_alone(messages)
                    continue
                # The store is unreachable (database down): keep the messages unacknowledged
                # and try them again; the broker holds everything after them.
                log.exception("storing %d messages failed; retrying", len(messages))
                self._retry.extend(messages)
                if self._stop.is_set():
                    time.sleep(1.0)  # stopping, still storing what it was sent: wait as well
                else:
                    self._stop.wait(1.0)
        self.dead_letters.flush()
        self._drained = not self._pending()

    def _beat(self) -> None:
        """Say this worker is listening (hub.ingest_beats), from the loop that stores: a
        worker whose loop is stuck goes silent too. A new connection starts ``up_since``
        afresh (taken when first seen here: later than the connect, which only holds more)."""
        if not self.client.connected.is_set():
            self._up_since = None
            return
        up_since = self._up_since
        if up_since is None or self.client.connections != self._connection:
            self._connection, self._beat_at = self.client.connections, 0.0
            self._up_since = up_since = datetime.now(UTC)
        if time.monotonic() - self._beat_at < ingest_beats.BEAT_SECONDS:
            return
        try:
            ingest_beats.beat(self.store.engine, self.name, up_since, datetime.now(UTC))
        except Exception:  # the store is away: storing fails too, and says so
            log.debug("ingest worker %s could not beat", self.name, exc_info=True)
            return
        self._beat_at = time.monotonic()

    def _store_answers(self) -> bool:
        try:
            with self.store.engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
        except Exception:
            return False
        return True

    def _ingest_alone(self, messages: list[mqtt.MQTTMessage]) -> None:
        """Ingest each message on its own; one that still fails while the store answers is
        filed as a dead letter (without its place: what it claims was not checked) and
        acknowledged, so ingest goes on. Should the store go away meanwhile, the rest wait."""
        for i, message in enumerate(messages):
            try:
                self._ingest([message])
            except Exception as exc:
                if not self._store_answers():
                    self._retry.extend(messages[i:])
                    return
                log.exception(
                    "ingest fails on a message on %s; filed as a dead letter", message.topic
                )
                reason = f"ingest failed on it: {type(exc).__name__}: {exc}"[:500]
                dead = self.dead_letters.admit([dead_letter(message, datetime.now(UTC), reason)])
                self.store.write(Batch(dead=dead))
                self.client.client.ack(message.mid, message.qos)

    def _take_batch(self) -> list[mqtt.MQTTMessage]:
        batch, self._retry = self._retry, []
        if not batch:
            try:
                batch.append(self._queue.get(timeout=0.2))
            except queue.Empty:
                return []
        deadline = time.monotonic() + self.batch_wait
        while len(batch) < self.batch_size:
            try:
                batch.append(self._queue.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                break
        return batch

    def _ingest(self, messages: list[mqtt.MQTTMessage]) -> None:
        now = datetime.now(UTC)
        batch: Batch = classify(messages, now)
        self.screen.screen(batch, now)
        kept_states = self.states.record(batch.states, now)
        batch.dead = self.dead_letters.admit(batch.dead)
        try:
            self.store.write(batch, self.dead_letters.admit)
        except (DataError, IntegrityError, OverflowError):
            # One message the database will not take (a value out of its range) must not hold
            # up the rest: store them one by one, and file the refused one as a dead letter.
            batch = self._write_one_by_one(batch, now)
        for message in messages:
            self.client.client.ack(message.mid, message.qos)
        self.stored += len(batch.events)
        if self._mirror is not None and batch.events:
            try:
                self._mirror(batch.events)
            except Exception:  # a mirror must never hold up the record
                log.exception("mirroring %d events failed", len(batch.events))
        for place in batch.devices():
            # Always answer with the mark, moved or not: the device may have missed the last.
            mark = self.store.advance_progress(*place)
            self.screen.marks.note(place, mark)
            self._acks_due[place] = mark
        for report in kept_states:
            if self._on_state and report.state.online:
                self._states.put(report.site, report.device, report.state)

    def _write_one_by_one(self, batch: Batch, now: datetime) -> Batch:
        written = Batch(sources=batch.sources)
        refused = []
        for event in batch.events:
            single = Batch(events=[event], sources=batch.sources)
            try:
                self.store.write(single, self.dead_letters.admit)
            except (DataError, IntegrityError, OverflowError) as exc:
                # Keep its place (device, epoch, seq), so the progress mark can pass it.
                place = {k: event[k] for k in PLACE}
                reason = f"the store refused it: {exc}"
                refused.append(dead_letter(batch.sources[event["event_id"]], now, reason, **place))
                continue
            written.events += single.events
            written.dead += single.dead
        rest = Batch(dead=batch.dead + self.dead_letters.admit(refused))
        self.store.write(rest)
        written.dead += rest.dead
        return written

    def _report_states(self) -> None:
        """Hand states to the callback on a thread of their own: it may publish a snapshot."""
        while (item := self._states.take()) is not None:
            try:
                self._on_state(*item)  # type: ignore[misc]
            except Exception:
                log.exception("handling the state of %s.%s failed", item[0], item[1])

    def _send_acks(self) -> None:
        if not self._acks_due or time.monotonic() - self._acks_sent_at < self.ack_interval:
            return
        for (site, device, epoch), seq in self._acks_due.items():
            args = {"seq": seq, "epoch": epoch}
            topic, payload, _ = command_message(self.key, site, device, "ack", args)
            self.client.client.publish(topic, payload, qos=1, retain=True)
        self._acks_due.clear()
        self._acks_sent_at = time.monotonic()


class _NewestStates:
    """The states owed to the callback: only the newest per device. Anyone on the broker can
    publish a door's own retained birth again, thousands of times a second, and each copy is
    kept; a queue of every copy grew without bound while the callback (a store query each)
    fell behind. Holds at most one state per registered device."""

    def __init__(self) -> None:
        self._pending: dict[tuple[str, str], DeviceState] = {}
        self._closed = False
        self._ready = threading.Condition()

    def put(self, site: str, device: str, state: DeviceState) -> None:
        with self._ready:
            self._pending.pop((site, device), None)  # the newest goes to the back
            self._pending[(site, device)] = state
            self._ready.notify()

    def take(self) -> tuple[str, str, DeviceState] | None:
        """The oldest device's newest state, waiting for one; None once closed."""
        with self._ready:
            while not self._pending and not self._closed:
                self._ready.wait()
            if self._closed:
                return None
            (site, device), state = next(iter(self._pending.items()))
            del self._pending[(site, device)]
            return site, device, state

    def close(self) -> None:
        with self._ready:
            self._closed = True
            self._ready.notify_all()
