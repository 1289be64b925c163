"""Sends the outbox to the hub, in ``seq`` order, and forgets an event only once the hub has it.

The SQLite outbox is the source of truth. This thread hands paho at most ``window``
unacknowledged messages at QoS 1 (paho's message ids wrap at 65,535). The broker's PUBACK frees
room in the window; a row is deleted only when the hub's signed acknowledgement says it has
stored every event up to that ``seq``. So a broker that dies after acknowledging (its disk
behind its memory) loses nothing: when the hub's mark stops moving, or the broker comes back
without our session, the events after the mark go out again, and the hub drops duplicates by
``event_id``. Paho's callbacks only queue work for this thread; nothing blocks in them.

Events salvaged from a damaged store (edge.agent.salvage) go out first, under the epoch and
``seq`` that store gave them; the hub's acknowledgement of that epoch forgets them, and they
are sent again, with the same backoff, until it comes.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable

import paho.mqtt.client as mqtt

from edge.agent.store import EdgeStore, OutboxEvent

log = logging.getLogger(__name__)

Publish = Callable[[str, bytes], mqtt.MQTTMessageInfo]


class OutboxSender:
    """A thread that drains the outbox through an MQTT client."""

    def __init__(
        self,
        store: EdgeStore,
        publish: Publish,
        topic_of: Callable[[OutboxEvent], str],
        window: int = 1000,
        resend_after: float = 10.0,
    ) -> None:
        if not 1 <= window <= 60_000:
            raise ValueError("the in-flight window is 1 to 60,000 messages")
        self.store = store
        self._publish = publish
        self._topic_of = topic_of
        self.window = window
        self.resend_after = resend_after
        self._stall_wait = resend_after
        self._inbox: queue.SimpleQueue[tuple[str, int, str]] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._connected = threading.Event()
        self._stop = threading.Event()
        self._inflight: dict[int, int] = {}  # paho mid -> outbox seq, until the broker's PUBACK
        self.confirmed = int(store.get_meta("hub_stored_seq") or 0)
        self._forget_due = False  # the hub's mark moved, but the outbox could not be trimmed
        self._published_upto = self.confirmed
        self._progress_at = time.monotonic()
        #: Salvaged events: their epochs, whether (and from which row) they are to be sent.
        self._salvaged = store.salvaged_epochs()
        self._salvage_from: int | None = 0 if self._salvaged else None
        self._salvage_sent_at = 0.0
        self._salvage_wait = resend_after
        self._thread = threading.Thread(target=self._run, name="outbox-sender", daemon=True)

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

    def connected(self, session_present: bool) -> None:
        self._inbox.put(("connected", int(session_present), ""))
        self._connected.set()
        self._wake.set()

    def disconnected(self) -> None:
        self._connected.clear()

    def acked(self, mid: int) -> None:
        """The broker acknowledged message ``mid`` (paho's on_publish)."""
        self._inbox.put(("puback", mid, ""))
        self._wake.set()

    def hub_stored(self, seq: int, epoch: str) -> None:
        """The hub has stored every event of this device up to ``seq`` (a verified ack).

        An ack for another store (a retained one from before the SD card was replaced), or for
        events this store never numbered, is ignored: it must never delete unsent events. An
        ack for the epoch of salvaged events forgets those up to ``seq``.
        """
        if epoch in self._salvaged:
            self._inbox.put(("salvaged", seq, epoch))
            self._wake.set()
            return
        if epoch != self.store.epoch or seq > self.store.last_seq():
            log.warning("ignoring the hub's ack up to %s of store %s", seq, epoch)
            return
        self._inbox.put(("stored", seq, ""))
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
                self._settle()
                if self._connected.is_set():
                    self._resend_if_stalled()
                    self._publish_salvaged()
                    self._publish_more()
            except Exception:
                log.exception("sending the outbox failed; retrying")
                self._stop.wait(1.0)

    def _settle(self) -> None:
        stored = self.confirmed
        while True:
            try:
                what, value, epoch = self._inbox.get_nowait()
            except queue.Empty:
                break
            if what == "puback":
                self._inflight.pop(value, None)
            elif what == "stored":
                stored = max(stored, value)
            elif what == "salvaged":
                self._forget_salvaged(epoch, value)
            elif what == "connected" and not value:
                # The broker has no session for us: whatever it held for the hub may be gone.
                self._inflight.clear()
                self._published_upto = min(self._published_upto, stored)
                self._salvage_from = 0 if self._salvaged else None
        if stored > self.confirmed:
            self.confirmed = stored
            self._forget_due = True
            self._progress_at = time.monotonic()
            self._stall_wait = self.resend_after
            self._published_upto = max(self._published_upto, stored)
        if self._forget_due:
            try:
                self.store.forget_events_upto(self.confirmed)
                self._forget_due = False
            except sqlite3.Error as exc:
                # A full disk cannot take even a delete: the mark is kept in memory (nothing
                # is sent twice) and the rows are trimmed once it can.
                log.warning("could not trim the outbox to the hub's mark (%s)", exc)

    def _forget_salvaged(self, epoch: str, seq: int) -> None:
        try:
            left = self.store.forget_salvaged_upto(epoch, seq)
            self._salvaged = self.store.salvaged_epochs() if left else set()
        except sqlite3.Error as exc:
            log.warning("could not forget salvaged events (%s): they are sent again", exc)
            return
        self._salvage_wait = self.resend_after
        self._salvage_sent_at = time.monotonic()
        if not self._salvaged:
            log.info("the hub has every salvaged event")
            self._salvage_from = None

    def _publish_salvaged(self) -> None:
        """Send the salvaged events; again, with a doubling wait, while the hub has not
        acknowledged them all."""
        if not self._salvaged:
            return
        if self._salvage_from is None:
            if time.monotonic() - self._salvage_sent_at <= self._salvage_wait:
                return
            log.warning("the hub has not acknowledged every salvaged event: sending them again")
            self._salvage_from = 0
            self._salvage_wait = min(self._salvage_wait * 2, 600.0)
        room = self.window - len(self._inflight)
        while room > 0 and self._connected.is_set():
            rows = self.store.salvaged_events(after_id=self._salvage_from, limit=min(room, 500))
            if not rows:
                self._salvage_from = None
                self._salvage_sent_at = time.monotonic()
                return
            for row in rows:
                info = self._publish(self._topic_of(row.event), row.event.wire(row.epoch))
                if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                    return  # retried from this row on the next wake
                self._inflight[info.mid] = 0
                self._salvage_from = row.id
            self._settle()
            room = self.window - len(self._inflight)

    def _resend_if_stalled(self) -> None:
        """Send again from the hub's mark when it stopped moving: the broker may have lost
        messages. The wait doubles while the hub stays silent (it may simply be down, and the
        broker queueing for it), up to ten minutes, so a backlog is not sent over and over."""
        waiting = self._published_upto > self.confirmed and not self._inflight
        if waiting and time.monotonic() - self._progress_at > self._stall_wait:
            log.warning("hub stopped at event %s; sending again from there", self.confirmed)
            self._published_upto = self.confirmed
            self._progress_at = time.monotonic()
            self._stall_wait = min(self._stall_wait * 2, 600.0)

    def _publish_more(self) -> None:
        room = self.window - len(self._inflight)
        while room > 0 and self._connected.is_set():
            events = self.store.pending_events(after_seq=self._published_upto, limit=min(room, 500))
            if not events:
                return
            if self._published_upto == self.confirmed and not self._inflight:
                self._progress_at = time.monotonic()  # a fresh start: the stall clock too
            for event in events:
                info = self._publish(self._topic_of(event), event.wire(self.store.epoch))
                if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                    log.warning("paho refused event %s: %s", event.seq, mqtt.error_string(info.rc))
                    return  # retried from this seq on the next wake
                # NO_CONN: paho keeps the message and sends it after reconnecting.
                self._inflight[info.mid] = event.seq
                self._published_upto = event.seq
            self._settle()
            room = self.window - len(self._inflight)
