"""Sorting a batch of received MQTT messages into events, device states and dead letters."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import paho.mqtt.client as mqtt
from pydantic import ValidationError

from hafen.protocol import (
    MAX_DEVICE_MESSAGE_BYTES,
    DeviceState,
    EventKind,
    EventMessage,
    parse_device_topic,
)
from hub.ingest.dead_letters import DEAD_LETTER_PREFIX, dead_letter

__all__ = ["DEAD_LETTER_PREFIX", "Batch", "StateReport", "classify", "dead_letter"]


@dataclass(frozen=True)
class StateReport:
    """A state published on a device's state topic, with the message it came in (for a dead
    letter, should it be refused)."""

    site: str
    device: str
    state: DeviceState
    message: mqtt.MQTTMessage


@dataclass
class Batch:
    """What one batch holds, ready to be written."""

    events: list[dict] = field(default_factory=list)
    #: In the order they arrived: a forged state after a real one must not hide it.
    states: list[StateReport] = field(default_factory=list)
    dead: list[dict] = field(default_factory=list)
    #: The message each event came in, by event id (for its dead letter, should it be one).
    sources: dict[str, mqtt.MQTTMessage] = field(default_factory=dict)

    def devices(self) -> set[tuple[str, str, str]]:
        """(site, device, epoch) of every event here, stored or dead-lettered with its place."""
        rows = [*self.events, *(d for d in self.dead if d.get("seq") is not None)]
        return {(r["site"], r["device"], r["epoch"]) for r in rows}


def classify(messages: list[mqtt.MQTTMessage], now: datetime) -> Batch:
    """Validate each message; anything that does not fit becomes a dead letter with its reason.

    An event whose envelope is readable but whose data does not fit its kind keeps its device,
    epoch and seq in the dead letter, so the hub's progress mark can pass it (hub.ingest.screen
    takes the place away again where the device or its seq is not to be believed).
    """
    batch = Batch()
    seen: set[str] = set()
    for message in messages:
        try:
            _classify_one(message, now, batch, seen)
        except (ValidationError, ValueError) as exc:
            topic = parse_device_topic(message.topic)
            who = {"site": topic.site, "device": topic.device} if topic else {}
            batch.dead.append(dead_letter(message, now, _reason(exc), **who))
    return batch


def _classify_one(message: mqtt.MQTTMessage, now: datetime, batch: Batch, seen: set[str]) -> None:
    topic = parse_device_topic(message.topic)
    if topic is None:
        raise ValueError("not a hafen device topic")
    if len(message.payload) > MAX_DEVICE_MESSAGE_BYTES:
        # No device sends this much (its link refuses to): not read, only its prefix kept.
        raise ValueError(f"larger than {MAX_DEVICE_MESSAGE_BYTES} bytes: not read")
    if topic.channel == "state":
        if not message.payload:
            return  # a cleared retained message: nothing to record
        state = DeviceState.model_validate_json(message.payload)
        batch.states.append(StateReport(topic.site, topic.device, state, message))
        return
    if topic.channel != "evt":
        raise ValueError(f"unexpected channel {topic.channel!r}")
    event = EventMessage.model_validate_json(message.payload)
    if event.event_id in seen:
        return
    seen.add(event.event_id)
    place: dict[str, str | int | None] = {
        "event_id": event.event_id,
        "site": topic.site,
        "device": topic.device,
        "epoch": event.epoch,
        "seq": event.seq,
    }
    try:
        kind = EventKind(topic.name or "")  # no name: a ValueError, as for an unknown one
        event.payload(kind)  # the data must fit the kind's model
    except (ValidationError, ValueError) as exc:
        batch.dead.append(dead_letter(message, now, _reason(exc), **place))
        return
    batch.sources[event.event_id] = message
    batch.events.append(
        {**place, "kind": kind.value, "at": event.at, "data": event.data, "received_at": now}
    )


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "payload"
        return f"invalid payload: {where}: {first['msg']} ({exc.error_count()} errors)"
    return str(exc)
