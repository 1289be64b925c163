"""The wire protocol shared by edge and hub: event kinds and their payload models.

Every event an edge decides on is written to its outbox as one of these models and later sent
to the hub unchanged; the hub validates with the same models. Topics join this module when the
MQTT link lands (see docs/protocol.md).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict

SCHEMA_VERSION = 1


class DenyReason(StrEnum):
    """Why a door said no; the order of checks is documented in edge.agent.decision."""

    UNKNOWN_CARD = "unknown_card"
    REVOKED = "revoked"
    BLOCKED = "blocked"
    WRONG_SITE = "wrong_site"
    NOT_YET_VALID = "not_yet_valid"
    EXPIRED = "expired"
    OUTSIDE_SCHEDULE = "outside_schedule"


class EventKind(StrEnum):
    """The kinds of event an edge publishes; each maps to one payload model below."""

    ACCESS_DECISION = "door.decision"
    DOOR_ALARM = "door.alarm"
    EXIT_REQUEST = "door.exit"
    DEVICE_FAULT = "device.fault"


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AccessDecision(_Payload):
    """A card was presented and the door decided; ``card`` is the keyed hash, never the UID."""

    card: str
    allowed: bool
    reason: DenyReason | None = None
    member: str | None = None
    plan: str | None = None


class DoorAlarm(_Payload):
    """The door was forced or held open (``raised``), or went back to normal (``cleared``)."""

    alarm: Literal["forced", "held_open"]
    state: Literal["raised", "cleared"]
    open_seconds: float | None = None


class ExitRequest(_Payload):
    """Someone pressed the exit button and the door unlocked for them."""

    source: Literal["button"] = "button"


class DeviceFault(_Payload):
    """A component stopped working (``fault`` says why) or recovered (``fault`` is None)."""

    component: str
    fault: str | None


PAYLOAD_MODELS: dict[EventKind, type[_Payload]] = {
    EventKind.ACCESS_DECISION: AccessDecision,
    EventKind.DOOR_ALARM: DoorAlarm,
    EventKind.EXIT_REQUEST: ExitRequest,
    EventKind.DEVICE_FAULT: DeviceFault,
}


def kind_of(payload: _Payload) -> EventKind:
    """Return the event kind that a payload model is sent as."""
    for kind, model in PAYLOAD_MODELS.items():
        if isinstance(payload, model):
            return kind
    raise TypeError(f"{type(payload).__name__} is not an event payload")
