"""The ingest worker: stores every edge event exactly once, fast, and tells devices how far.

Several workers share the load through a shared subscription. Messages are taken in batches,
written in one transaction (idempotent by ``event_id``), and acknowledged to the broker only
after the commit, so a worker that dies loses nothing. A payload that does not validate goes to
the dead-letter table with the reason and its raw bytes. After each batch the worker works out,
per device, up to which ``seq`` every event is stored, and sends the device a signed ``ack`` so
it can forget those events.
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

from hafen import protocol
from hafen.protocol import DeviceState
from hub.commands import command_message
from hub.ingest.batch import Batch, classify
from hub.ingest.store import IngestStore
from hub.mqtt import HubClient

log = logging.getLogger(__name__)

DEFAULT_GROUP = "hafen-ingest"


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
    ) -> None:
        self.store = IngestStore(engine)
        self.key = key
        self.batch_size = batch_size
        self.batch_wait = batch_wait
        self.ack_interval = ack_interval
        self._on_state = on_state
        self._queue: queue.SimpleQueue[mqtt.MQTTMessage] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"ingest-{name}", daemon=True)
        self._acks_due: dict[tuple[str, str], int] = {}
        self._acks_sent_at = 0.0
        self.stored = 0
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
            # MQTT 3.1.1: paho builds a v5 Properties object for every message received and
            # acknowledged, a quarter of the worker's time; shared subscriptions work alike.
            protocol=mqtt.MQTTv311,
        )

    def start(self) -> None:
        self._thread.start()
        self.client.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.client.stop()

    def _run(self) -> None:
        while not self._stop.is_set():
            messages = self._take_batch()
            if messages:
                try:
                    self._ingest(messages)
                except Exception:
                    # Not acknowledged: the broker delivers them again after a reconnect.
                    log.exception("storing a batch of %d messages failed", len(messages))
                    self.client.client.reconnect()
                    continue
            self._send_acks()

    def _take_batch(self) -> list[mqtt.MQTTMessage]:
        try:
            first = self._queue.get(timeout=0.2)
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.monotonic() + self.batch_wait
        while len(batch) < self.batch_size:
            try:
                batch.append(self._queue.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                break
        return batch

    def _ingest(self, messages: list[mqtt.MQTTMessage]) -> None:
        batch: Batch = classify(messages, datetime.now(UTC))
        self.store.write(batch)
        for message in messages:
            self.client.client.ack(message.mid, message.qos)
        self.stored += len(batch.events)
        for device in {(e["site"], e["device"]) for e in batch.events}:
            mark = self.store.advance_progress(*device)
            if mark:
                self._acks_due[device] = mark
        if self._on_state:
            for (site, device), state in batch.states.items():
                self._on_state(site, device, state)

    def _send_acks(self) -> None:
        if not self._acks_due or time.monotonic() - self._acks_sent_at < self.ack_interval:
            return
        for (site, device), seq in self._acks_due.items():
            topic, payload, _ = command_message(self.key, site, device, "ack", {"seq": seq})
            self.client.client.publish(topic, payload, qos=1, retain=True)
        self._acks_due.clear()
        self._acks_sent_at = time.monotonic()
