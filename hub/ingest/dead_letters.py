"""Dead letters: what ingest refused, kept for whoever investigates, at a bounded cost.

Anyone connected to the broker can publish on a device's topics (issue 13), so what ingest
refuses may be garbage sent on purpose, in bulk and large. A dead letter therefore keeps the
topic, the reason, the first ``DEAD_LETTER_PREFIX`` bytes of the payload, its size and its
SHA-256 (enough to recognise and compare payloads), never the whole payload. And a worker
files at most ``per_prefix`` dead letters a minute per (site, device) topic prefix and
``overall`` in all; the rest are counted and summed up in one log line a minute. Messages
refused beyond the bounds are still consumed (acknowledged to the broker): holding them back
would only hold up the real events behind them.

A dead letter that keeps its place (device, epoch, seq: an event of a registered device whose
data was refused) fills its gap, so the device's progress mark can pass it. Those count
against their own prefix's bound but not the overall one: they can only come from a
registered device near its mark, and filing them keeps that device's outbox draining when
someone floods the broker with garbage elsewhere.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import Counter
from datetime import datetime
from typing import Any

import paho.mqtt.client as mqtt

from hub.rate_limits import Clock

log = logging.getLogger(__name__)

#: Bytes of a refused payload kept in its dead letter (migration 0008 cut older ones to this).
DEAD_LETTER_PREFIX = 4096
#: Dead letters a worker files per (site, device) topic prefix in a minute ...
PER_PREFIX_PER_MINUTE = 60
#: ... and in all (a dead letter without a place counts against both).
OVERALL_PER_MINUTE = 600
#: The longest reason kept (a database's refusal may quote a whole statement).
MAX_REASON = 500
#: What a place is made of: the fields a dead letter without one leaves empty.
PLACE_FIELDS = ("event_id", "epoch", "seq")


def dead_letter(
    message: mqtt.MQTTMessage, now: datetime, reason: str, **place: str | int | None
) -> dict[str, Any]:
    """The dead letter of ``message``: ``place`` (event_id, site, device, epoch, seq) as far
    as it could be read; the payload cut to its prefix, with its size and hash."""
    return dead_letter_of(message.topic, bytes(message.payload), now, reason, place)


def dead_letter_of(
    topic: str, payload: bytes, now: datetime, reason: str, place: dict[str, Any]
) -> dict[str, Any]:
    """A dead letter of ``payload`` as received on ``topic`` (see ``dead_letter``)."""
    return {
        "event_id": place.get("event_id"),
        "site": _short(place.get("site")),
        "device": _short(place.get("device")),
        "epoch": place.get("epoch"),
        "seq": place.get("seq"),
        "topic": _text(topic, 1000),
        "payload": payload[:DEAD_LETTER_PREFIX],
        "payload_bytes": len(payload),
        "payload_sha256": hashlib.sha256(payload).hexdigest(),
        "reason": _text(reason, MAX_REASON),
        "received_at": now,
    }


def without_place(letter: dict[str, Any], reason: str) -> dict[str, Any]:
    """The letter with a new reason and no place: it fills no gap and holds no event id, so
    the real event of that place (or id) is still stored when it comes."""
    return {**letter, **dict.fromkeys(PLACE_FIELDS), "reason": _text(reason, MAX_REASON)}


def has_place(letter: dict[str, Any]) -> bool:
    return letter.get("seq") is not None


def _short(value: str | int | None) -> str | None:
    return None if value is None else _text(str(value), 64)


def _text(text: str, most: int) -> str:
    """``text`` as a text column takes it: PostgreSQL refuses NUL, and a reason may quote what
    was sent (or a database error quoting it)."""
    return text.replace("\x00", "\\0")[:most]


def prefix_of(letter: dict[str, Any]) -> tuple[str, str]:
    """The (site, device) levels of a dead letter's topic (``hafen/v1/{site}/{device}/...``),
    read from the topic itself: a garbage topic has them too, as ingest subscribes."""
    parts = str(letter["topic"]).split("/", 4)
    site = parts[2] if len(parts) > 2 else ""
    device = parts[3] if len(parts) > 3 else ""
    return site[:64], device[:64]


class DeadLetterLimiter:
    """Files at most so many dead letters a minute; counts and sums up the rest.

    Windows are whole minutes from the first letter; the counts per prefix are forgotten
    with each window, and a prefix is only remembered while the overall bound has room (or
    for a letter with a place, which only registered devices have), so a flood of invented
    topics costs a bounded amount of memory.
    """

    def __init__(
        self,
        per_prefix: int = PER_PREFIX_PER_MINUTE,
        overall: int = OVERALL_PER_MINUTE,
        window_seconds: float = 60.0,
        clock: Clock = time.monotonic,
    ) -> None:
        if per_prefix < 1 or overall < 1 or window_seconds <= 0:
            raise ValueError("dead-letter bounds must be positive")
        self.per_prefix, self.overall = per_prefix, overall
        self.window_seconds = window_seconds
        self._clock = clock
        self._window_start = clock()
        self._by_prefix: Counter[tuple[str, str]] = Counter()
        self._filed = 0
        self._dropped: Counter[tuple[str, str]] = Counter()
        #: Dead letters filed and dropped since the start.
        self.filed_total = 0
        self.dropped_total = 0

    def admit(self, letters: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The letters to file, in order; the others are counted as dropped."""
        self.tick()
        kept = []
        for letter in letters:
            placed = has_place(letter)
            prefix = prefix_of(letter)
            if (not placed and self._filed >= self.overall) or (
                self._by_prefix[prefix] >= self.per_prefix
            ):
                self._drop(prefix)
                continue
            self._by_prefix[prefix] += 1
            self._filed += not placed
            kept.append(letter)
        self.filed_total += len(kept)
        return kept

    def _drop(self, prefix: tuple[str, str]) -> None:
        self.dropped_total += 1
        if prefix in self._dropped or len(self._dropped) < self.overall:
            self._dropped[prefix] += 1
        else:
            self._dropped[("*", "*")] += 1  # many prefixes: the rest counted together

    def tick(self) -> None:
        """Start a new window when the minute is over, summing up what the last one dropped
        (the worker calls this now and then, so the summary comes when the flood stops too)."""
        now = self._clock()
        if now - self._window_start < self.window_seconds:
            return
        self.flush()
        self._window_start = now

    def flush(self) -> None:
        """Log the dropped letters of the window so far (once), and start counting afresh."""
        if self._dropped:
            worst = ", ".join(f"{s!r}/{d!r}: {n}" for (s, d), n in self._dropped.most_common(5))
            log.warning(
                "dropped %d dead letters from %d topic prefixes in the last %.0f s over the"
                " bounds (%d per prefix, %d in all); most from %s",
                sum(self._dropped.values()),
                len(self._dropped),
                self.window_seconds,
                self.per_prefix,
                self.overall,
                worst,
            )
        self._by_prefix.clear()
        self._dropped.clear()
        self._filed = 0
