"""The wire protocol shared by edge and hub: topics, payload models, signed access lists.

Every topic string is built here and nowhere else; docs/protocol.md describes each with an
example. Events are written to an edge's outbox as the payload models below and sent to the hub
unchanged; the hub validates them with the same models.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from hafen.acl import AccessList, AccessListDelta
from hafen.ids import Slug, is_slug

SCHEMA_VERSION: Final = 1


class DenyReason(StrEnum):
    """Why a door said no; the order of checks is documented in edge.agent.decision."""

    UNKNOWN_CARD = "unknown_card"
    REVOKED = "revoked"
    BLOCKED = "blocked"
    WRONG_SITE = "wrong_site"
    NOT_YET_VALID = "not_yet_valid"
    EXPIRED = "expired"
    OUTSIDE_SCHEDULE = "outside_schedule"
    #: The door has no access list (its store was recovered; the hub's snapshot is on its way),
    #: or cannot read it (a damaged store): it decided by its fail mode. On a fail-safe door
    #: the decision is allowed and still carries the reason: the list did not decide.
    NO_ACCESS_LIST = "no_access_list"
    STORE_FAILED = "store_failed"


class EventKind(StrEnum):
    """The kinds of event an edge publishes; each maps to one payload model below."""

    ACCESS_DECISION = "door.decision"
    DOOR_ALARM = "door.alarm"
    EXIT_REQUEST = "door.exit"
    REMOTE_UNLOCK = "door.remote_unlock"
    DEVICE_FAULT = "device.fault"
    ACL_REFUSED = "acl.refused"
    OCCUPANCY = "occupancy.sample"
    SELFTEST = "device.selftest"
    CERTIFICATE_RENEWED = "device.certificate"


class EventPayload(BaseModel):
    """The body of an event: one subclass per ``EventKind`` (``PAYLOAD_MODELS``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class AccessDecision(EventPayload):
    """A card was presented and the door decided; ``card`` is the keyed hash, never the UID."""

    card: str
    allowed: bool
    reason: DenyReason | None = None
    member: str | None = None
    plan: str | None = None


#: The door's alarms: opened while locked, or left open too long.
AlarmKind = Literal["forced", "held_open"]


class DoorAlarm(EventPayload):
    """The door was forced or held open (``raised``), or went back to normal (``cleared``)."""

    alarm: AlarmKind
    state: Literal["raised", "cleared"]
    open_seconds: float | None = None


class ExitRequest(EventPayload):
    """Someone pressed the exit button and the door unlocked for them."""

    source: Literal["button"] = "button"


class DeviceFault(EventPayload):
    """A component stopped working (``fault`` says why) or recovered (``fault`` is None).

    Events are stored and sent without their None fields, so a recovery arrives without
    ``fault``: it defaults to None (it was required, and every recovery became a dead letter).
    """

    component: str
    fault: str | None = None


class RemoteUnlock(EventPayload):
    """The hub unlocked the door remotely (command id, so the hub can match it)."""

    command: str
    seconds: float


class AclRefused(EventPayload):
    """Access lists arrived and were not applied: why (the last one), what it offered, and how
    many were refused since the last report (doors report refusals at a bounded rate)."""

    reason: Annotated[str, Field(max_length=500)]
    version: int | None = None
    applied_version: int
    count: int = Field(default=1, ge=1, le=2**31 - 1)


class CertificateRenewed(EventPayload):
    """The door renewed its certificate and now signs in with the new one (edge.agent.renewal):
    the serial's first 16 hex digits and when it ends, never the certificate itself."""

    serial: Annotated[str, Field(pattern=r"^[0-9a-f]{1,16}$")]
    not_after: AwareDatetime


#: A room, sensor or component name.
Name = Slug
#: A component that can fail: ``reader``, ``store``, ``co2.{sensor}``, ``mqtt``. Room for
#: ``co2.`` and the longest id (63 characters): a state that cannot be built reaches no one.
Component = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,66}$")]
#: A fault as a device reports it: short text, never a card UID.
FaultText = Annotated[str, Field(max_length=200)]
#: The most faults a device state carries.
MAX_FAULTS = 16


class OccupancySample(EventPayload):
    """The space's estimated occupancy: every minute and on each change.

    ``count`` is the estimator's best single number (the median of its belief), ``low`` and
    ``high`` bound the true count with 90 % probability, and ``confidence`` is the chance that
    the true count is within one of ``count``; the benchmark checks that both mean what they
    say (``benchmarks/occupancy_days.py``). Doors from before the interval send neither bound,
    and their confidence only fell with each uncertain door event. ``uncertain`` counts the
    door openings since the space was last surely empty that the door alone could not read.
    A CO2 value of None is a reading that failed (a sensor fault), never a guess.
    """

    count: int = Field(ge=0, le=100_000)
    low: int | None = Field(default=None, ge=0, le=100_000)
    high: int | None = Field(default=None, ge=0, le=100_000)
    capacity: int | None = Field(default=None, ge=1, le=100_000)
    confidence: float = Field(ge=0, le=1)
    uncertain: int = Field(default=0, ge=0, le=1_000_000)
    present: bool
    rooms: dict[Name, bool] = Field(default_factory=dict)
    co2: dict[Name, Annotated[int, Field(ge=0, le=100_000)] | None] = Field(default_factory=dict)
    #: ``no_motion`` and ``closing_time`` were the resets of doors from before the interval.
    cause: Literal["minute", "change", "no_motion", "closing_time", "start"] = "minute"

    @model_validator(mode="after")
    def _interval_holds_the_count(self) -> OccupancySample:
        if (self.low is None) != (self.high is None):
            raise ValueError("send low and high together (the 90 % interval), or neither")
        if (
            self.low is not None
            and self.high is not None
            and not self.low <= self.count <= self.high
        ):
            raise ValueError("the interval must hold the count: low <= count <= high")
        return self


class LiveState(OccupancySample):
    """Retained on ``.../occupancy``: the latest sample and the door, for live views."""

    at: AwareDatetime
    door_locked: bool | None = None
    door_open: bool | None = None


#: What a self-test check came to: ``skipped`` when it was not asked for or has no part to test.
SelfTestOutcome = Literal["pass", "fail", "skipped"]
#: The most checks one self-test carries to the hub (a door's parts, its rooms and sensors).
MAX_SELFTEST_CHECKS = 20
#: The longest detail of a check the hub keeps.
MAX_SELFTEST_DETAIL = 120


class SelfTestCheck(BaseModel):
    """One check of a self-test: its name (``strike``, ``co2.air``), outcome and a short why."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Component
    outcome: SelfTestOutcome
    detail: Annotated[str, Field(max_length=MAX_SELFTEST_DETAIL)] = ""


class SelfTest(EventPayload):
    """A technician's self-test of the door on site (``hafen edge selftest``): every check and
    whether all passed. Failures come first when there are more checks than the event carries
    (``left_out`` counts the rest). Never a card UID or a member: a tap shows its outcome only."""

    passed: bool
    checks: list[SelfTestCheck] = Field(max_length=MAX_SELFTEST_CHECKS)
    left_out: int = Field(default=0, ge=0, le=10_000)

    @model_validator(mode="after")
    def _passed_means_no_failure(self) -> SelfTest:
        if self.passed and any(check.outcome == "fail" for check in self.checks):
            raise ValueError("a self-test with a failed check did not pass")
        return self


PAYLOAD_MODELS: dict[EventKind, type[EventPayload]] = {
    EventKind.ACCESS_DECISION: AccessDecision,
    EventKind.DOOR_ALARM: DoorAlarm,
    EventKind.EXIT_REQUEST: ExitRequest,
    EventKind.REMOTE_UNLOCK: RemoteUnlock,
    EventKind.DEVICE_FAULT: DeviceFault,
    EventKind.ACL_REFUSED: AclRefused,
    EventKind.OCCUPANCY: OccupancySample,
    EventKind.SELFTEST: SelfTest,
    EventKind.CERTIFICATE_RENEWED: CertificateRenewed,
}


def kind_of(payload: EventPayload) -> EventKind:
    """Return the event kind that a payload model is sent as."""
    for kind, model in PAYLOAD_MODELS.items():
        if isinstance(payload, model):
            return kind
    raise TypeError(f"{type(payload).__name__} is not an event payload")


# -- topics ----------------------------------------------------------------------------------------

ROOT = "hafen/v1"
#: Topic levels a site or device id may not take, so that no two topic kinds can collide.
RESERVED_IDS = frozenset({"acl", "+", "#"})


def device_prefix(site: str, device: str) -> str:
    """Everything a device publishes lives under this prefix (the broker enforces it)."""
    return f"{ROOT}/{site}/{device}"


def state_topic(site: str, device: str) -> str:
    """Retained birth / last-will state of a device."""
    return f"{device_prefix(site, device)}/state"


def occupancy_topic(site: str, device: str) -> str:
    """Retained: the device's latest occupancy sample, for live views (Home Assistant too)."""
    return f"{device_prefix(site, device)}/occupancy"


def event_topic(site: str, device: str, kind: EventKind | str) -> str:
    return f"{device_prefix(site, device)}/evt/{EventKind(kind).value}"


def command_topic(site: str, device: str, name: str) -> str:
    return f"{device_prefix(site, device)}/cmd/{name}"


def reply_topic(site: str, device: str, name: str) -> str:
    return f"{device_prefix(site, device)}/reply/{name}"


def renewal_topic(site: str, device: str) -> str:
    """A device asks the hub for a new certificate here (``RenewalRequest``)."""
    return f"{device_prefix(site, device)}/renew"


def acl_topic(site: str) -> str:
    """Retained: the newest signed access list (snapshot or delta) of a site."""
    return f"{ROOT}/{site}/acl"


ALL_EVENTS = f"{ROOT}/+/+/evt/#"
ALL_STATES = f"{ROOT}/+/+/state"
ALL_REPLIES = f"{ROOT}/+/+/reply/#"
ALL_OCCUPANCY = f"{ROOT}/+/+/occupancy"
ALL_COMMANDS = f"{ROOT}/+/+/cmd/#"


def all_commands(name: str) -> str:
    """The filter of one command to every device: ingest may send acks and catch-up lists,
    not unlocks."""
    return f"{ROOT}/+/+/cmd/{name}"


ALL_LISTS = f"{ROOT}/+/acl"
ALL_RENEWALS = f"{ROOT}/+/+/renew"


def discovery_topic(prefix: str, component: str, object_id: str) -> str:
    """Home Assistant MQTT discovery: ``{prefix}/{component}/{object_id}/config``."""
    return f"{prefix}/{component}/{object_id}/config"


def own_commands(site: str, device: str) -> str:
    """The filter a device subscribes to for its commands."""
    return f"{device_prefix(site, device)}/cmd/#"


def device_topics(site: str, device: str) -> str:
    """The filter of everything a device may publish: its own prefix."""
    return f"{device_prefix(site, device)}/#"


#: mosquitto's dynamic-security plugin: commands in, answers out (the hub's broker rights).
BROKER_CONTROL = "$CONTROL/dynamic-security/v1"
BROKER_CONTROL_RESPONSE = f"{BROKER_CONTROL}/response"


def shared(group: str, topic_filter: str) -> str:
    """A shared subscription: the broker gives each message to one member of ``group``."""
    return f"$share/{group}/{topic_filter}"


@dataclass(frozen=True)
class DeviceTopic:
    """A device topic taken apart: ``channel`` is state, evt, cmd or reply."""

    site: str
    device: str
    channel: str
    name: str | None


def parse_device_topic(topic: str) -> DeviceTopic | None:
    """Split ``hafen/v1/{site}/{device}/{channel}[/{name}]``; None for anything else."""
    parts = topic.split("/")
    if len(parts) < 5 or "/".join(parts[:2]) != ROOT:
        return None
    site, device, channel, rest = parts[2], parts[3], parts[4], parts[5:]
    if not (is_slug(site) and is_slug(device)):
        return None
    if channel in ("state", "occupancy", "renew") and not rest:
        return DeviceTopic(site, device, channel, None)
    if channel in ("evt", "cmd", "reply") and len(rest) == 1 and rest[0]:
        return DeviceTopic(site, device, channel, rest[0])
    return None


# -- payloads on the wire --------------------------------------------------------------------------

#: Bounds that fit a signed 64-bit (or, for list versions, 32-bit) column on every database.
Seq = Annotated[int, Field(ge=1, le=2**63 - 1)]
Epoch = Annotated[str, Field(pattern=r"^[0-9a-f]{16}$")]
Version = Annotated[int, Field(ge=0, le=2**31 - 1)]


class EventMessage(BaseModel):
    """An event as published on ``.../evt/{kind}``; site and device come from the topic."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = Field(SCHEMA_VERSION, alias="schema")
    event_id: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
    #: Names the device's store: ``seq`` counts from 1 again in a new one (a replaced SD card).
    epoch: Epoch
    seq: Seq
    at: AwareDatetime
    data: dict[str, Any]

    def payload(self, kind: EventKind) -> EventPayload:
        """Validate ``data`` against the model of ``kind``."""
        return PAYLOAD_MODELS[kind].model_validate(self.data)


class DeviceState(BaseModel):
    """Retained on ``.../state``: the birth on connect, or the will when the link dies.

    ``session`` grows with every connection, so the hub ignores a will that arrives after the
    device has already reconnected. ``seen_version`` is the newest signed list version the
    door has seen anywhere (above ``acl_version``: it knows it is behind). ``takeovers`` counts
    the door's sessions taken over by another connection with its client id since it started;
    ``faults`` are its components' current faults. ``proof`` (hafen.device_proof) tells the hub
    the state is the door's own.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = Field(SCHEMA_VERSION, alias="schema")
    online: bool
    session: int = Field(ge=0, le=2**63 - 1)
    #: The door's store (as in its events): a new store counts sessions from the start again.
    epoch: Epoch | None = None
    software: Annotated[str, Field(max_length=40)] | None = None
    acl_version: Version | None = None
    seen_version: Version | None = None
    takeovers: int = Field(default=0, ge=0, le=2**31 - 1)
    faults: dict[Component, FaultText] = Field(default_factory=dict, max_length=MAX_FAULTS)
    uptime_seconds: float | None = Field(default=None, ge=0, le=1e10, allow_inf_nan=False)
    at: AwareDatetime | None = None
    proof: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None = None


class CommandReply(BaseModel):
    """A device's answer to a command on ``.../reply/{name}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = Field(SCHEMA_VERSION, alias="schema")
    command: str
    ok: bool
    detail: str | None = None


#: The largest certificate request (or certificate) in PEM: a P-256 one is under 1 KiB.
MAX_PEM_CHARS = 8192


class RenewalRequest(BaseModel):
    """A device's request for a new certificate on ``.../renew``: a PEM certificate request
    for a key it made. The hub names the device from the topic, whatever the request says."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = Field(SCHEMA_VERSION, alias="schema")
    csr: Annotated[str, Field(min_length=1, max_length=MAX_PEM_CHARS)]


#: Commands the hub can send a device, each sealed like an access list (hafen.signing).
#: ``certificate`` answers a renewal request (args: ``certificate``, PEM).
COMMANDS = ("unlock", "send_state", "acl_snapshot", "ack", "certificate")


def encode_json(model: BaseModel) -> bytes:
    return model.model_dump_json(by_alias=True, exclude_none=True).encode()


# -- access lists on the wire ----------------------------------------------------------------------

ACL_ENCODING = "zlib+json"
#: The most an access list may inflate to (a 100,000-card snapshot is about 14 MB).
MAX_ACL_BYTES = 64 * 1024 * 1024

# -- sizes on the wire -----------------------------------------------------------------------------

#: The largest MQTT packet anyone takes: the broker's ``max_packet_size`` (provisioning) and the
#: Maximum Packet Size every hafen client sends in its CONNECT, so the broker never hands a
#: client more. A signed 100,000-card snapshot is about 2.6 MB.
MAX_PACKET_BYTES = 8 * 1024 * 1024
#: The largest event, state or reply a device publishes; the hub refuses bigger ones unread.
MAX_DEVICE_MESSAGE_BYTES = 64 * 1024


def acl_header(doc: AccessList | AccessListDelta, issued_at: datetime) -> dict[str, Any]:
    """The signed header of an access-list message."""
    delta = isinstance(doc, AccessListDelta)
    return {
        "type": "acl",
        "site": doc.site,
        "version": doc.version,
        "kind": "delta" if delta else "snapshot",
        "base": doc.base if isinstance(doc, AccessListDelta) else None,
        "encoding": ACL_ENCODING,
        "issued_at": issued_at.isoformat(),
    }


def acl_body(doc: AccessList | AccessListDelta) -> bytes:
    return zlib.compress(doc.model_dump_json(exclude_none=True).encode(), 9)


def read_acl_body(header: dict[str, Any], body: bytes) -> AccessList | AccessListDelta:
    """Decode and validate the body of a verified access-list message."""
    if header.get("encoding") != ACL_ENCODING:
        raise ValueError(f"unknown encoding {header.get('encoding')!r}")
    inflater = zlib.decompressobj()
    raw = inflater.decompress(body, MAX_ACL_BYTES)
    if inflater.unconsumed_tail or not inflater.eof:
        raise ValueError(f"the list is truncated or inflates past {MAX_ACL_BYTES} bytes")
    model = AccessListDelta if header.get("kind") == "delta" else AccessList
    doc = model.model_validate_json(raw)
    if doc.site != header.get("site") or doc.version != header.get("version"):
        raise ValueError("the body does not match the signed header")
    return doc
