"""Sends the outbox to the hub: in ``seq`` order, each row deleted only after its PUBACK.

The SQLite outbox is the source of truth. This thread reads it, hands paho at most ``window``
unacknowledged messages (paho's message ids wrap at 65,535), and deletes a row when the broker
has acknowledged it. paho itself resends unacknowledged messages after a reconnect; after a
restart the rows are simply still there and go out again, and the hub drops the duplicates by
``event_id``. Paho's callbacks only queue acknowledgements; nothing blocks in them.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

import paho.mqtt.client as mqtt

from edge.agent.store import EdgeStore, OutboxEvent

log = logging.getLogger(__name__)

Publish = Callable[[str, bytes], mqtt.MQTTMessageInfo]


class OutboxSender:
    """A thread that drains the outbox through an MQTT client at QoS 1."""

    def __init__(
        self,
        store: EdgeStore,
        publish: Publish,
        topic_of: Callable[[OutboxEvent], str],
        window: int = 1000,
    ) -> None:
        if not 1 <= window <= 60_000:
            raise ValueError("the in-flight window is 1 to 60,000 messages")
        self.store = store
        self._publish = publish
        self._topic_of = topic_of
        self.window = window
        self._acks: queue.SimpleQueue[int] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._connected = threading.Event()
        self._stop = threading.Event()
        self._inflight: dict[int, int] = {}  # paho mid -> outbox seq
        self._last_seq = 0
        self._thread = threading.Thread(target=self._run, name="outbox-sender", daemon=True)
        self.sent = 0

    # -- called from other threads; never blocks ---------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)

    def wake(self) -> None:
        """New events are in the outbox."""
        self._wake.set()

    def connected(self) -> None:
        self._connected.set()
        self._wake.set()

    def disconnected(self) -> None:
        self._connected.clear()

    def acked(self, mid: int) -> None:
        """The broker acknowledged message ``mid`` (paho's on_publish)."""
        self._acks.put(mid)
        self._wake.set()

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    # -- the sender thread -----------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(1.0)
            self._wake.clear()
            try:
                self._settle_acks()
                if self._connected.is_set():
                    self._publish_more()
            except Exception:
                log.exception("sending the outbox failed; retrying")
                self._stop.wait(1.0)

    def _settle_acks(self) -> None:
        done = []
        while True:
            try:
                mid = self._acks.get_nowait()
            except queue.Empty:
                break
            seq = self._inflight.pop(mid, None)
            if seq is not None:
                done.append(seq)
        if done:
            self.store.delete_events(done)
            self.sent += len(done)

    def _publish_more(self) -> None:
        room = self.window - len(self._inflight)
        while room > 0 and self._connected.is_set():
            events = self.store.pending_events(after_seq=self._last_seq, limit=min(room, 500))
            if not events:
                return
            for event in events:
                info = self._publish(self._topic_of(event), event.wire())
                if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                    log.warning("paho refused event %s: %s", event.seq, mqtt.error_string(info.rc))
                    return  # retried from this seq on the next wake
                # NO_CONN: paho keeps the message and sends it after reconnecting.
                self._inflight[info.mid] = event.seq
                self._last_seq = event.seq
            room = self.window - len(self._inflight)
            self._settle_acks()
