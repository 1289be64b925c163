"""Sorting a batch of received MQTT messages into events, device states and dead letters."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import paho.mqtt.client as mqtt
from pydantic import ValidationError

from hafen.protocol import DeviceState, EventKind, EventMessage, parse_device_topic


@dataclass
class Batch:
    """What one batch holds, ready to be written."""

    events: list[dict] = field(default_factory=list)
    states: dict[tuple[str, str], DeviceState] = field(default_factory=dict)
    dead: list[dict] = field(default_factory=list)

    def devices(self) -> set[tuple[str, str, str]]:
        """(site, device, epoch) of every event here, stored or dead-lettered."""
        rows = [*self.events, *(d for d in self.dead if d.get("seq") is not None)]
        return {(r["site"], r["device"], r["epoch"]) for r in rows}


def classify(messages: list[mqtt.MQTTMessage], now: datetime) -> Batch:
    """Validate each message; anything that does not fit becomes a dead letter with its reason.

    An event whose envelope is readable but whose data does not fit its kind keeps its device,
    epoch and seq in the dead letter, so the hub's progress mark can pass it.
    """
    batch = Batch()
    seen: set[str] = set()
    for message in messages:
        try:
            _classify_one(message, now, batch, seen)
        except (ValidationError, ValueError) as exc:
            batch.dead.append(dead_letter(message, now, _reason(exc)))
    return batch


def dead_letter(
    message: mqtt.MQTTMessage, now: datetime, reason: str, **place: str | int | None
) -> dict[str, Any]:
    return {
        "event_id": place.get("event_id"),
        "site": place.get("site"),
        "device": place.get("device"),
        "epoch": place.get("epoch"),
        "seq": place.get("seq"),
        "topic": message.topic[:1000],
        "payload": bytes(message.payload),
        "reason": reason,
        "received_at": now,
    }


def _classify_one(message: mqtt.MQTTMessage, now: datetime, batch: Batch, seen: set[str]) -> None:
    topic = parse_device_topic(message.topic)
    if topic is None:
        raise ValueError("not a hafen device topic")
    if topic.channel == "state":
        if not message.payload:
            return  # a cleared retained message: nothing to record
        batch.states[(topic.site, topic.device)] = DeviceState.model_validate_json(message.payload)
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
    batch.events.append(
        {**place, "kind": kind.value, "at": event.at, "data": event.data, "received_at": now}
    )


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "payload"
        return f"invalid payload: {where}: {first['msg']} ({exc.error_count()} errors)"
    return str(exc)
