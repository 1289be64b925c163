"""The wire protocol shared by edge and hub: topics, envelopes, sizes, signed access lists;
the payload models of events live in ``hafen.payloads`` and are re-exported here.

Every topic string is built here and nowhere else; docs/protocol.md describes each with an
example. Events are written to an edge's outbox as the payload models and sent to the hub
unchanged; the hub validates them with the same models.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from hafen.acl import AccessList, AccessListDelta
from hafen.ids import is_slug
from hafen.payloads import (  # re-exported: the protocol carries them
    MAX_FAULTS as MAX_FAULTS,
    MAX_SELFTEST_CHECKS as MAX_SELFTEST_CHECKS,
    MAX_SELFTEST_DETAIL as MAX_SELFTEST_DETAIL,
    PAYLOAD_MODELS as PAYLOAD_MODELS,
    AccessDecision as AccessDecision,
    AclRefused as AclRefused,
    AlarmKind as AlarmKind,
    CertificateRenewed as CertificateRenewed,
    Component as Component,
    DenyReason as DenyReason,
    DeviceFault as DeviceFault,
    DoorAlarm as DoorAlarm,
    EventKind as EventKind,
    EventPayload as EventPayload,
    ExitRequest as ExitRequest,
    FaultText as FaultText,
    LiveState as LiveState,
    Name as Name,
    OccupancySample as OccupancySample,
    RemoteUnlock as RemoteUnlock,
    SelfTest as SelfTest,
    SelfTestCheck as SelfTestCheck,
    SelfTestOutcome as SelfTestOutcome,
    UpdateReport as UpdateReport,
    UpdateStep as UpdateStep,
    VersionName as VersionName,
    kind_of as kind_of,
)

SCHEMA_VERSION: Final = 1


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
#: ``certificate`` answers a renewal request (args: ``certificate``, PEM); ``update`` orders a
#: release (args: ``UpdateOrder``).
COMMANDS = ("unlock", "send_state", "acl_snapshot", "ack", "certificate", "update")


class UpdateOrder(BaseModel):
    """The args of an ``update`` command: install ``version`` for ``rollout``. The door
    fetches the release's signed manifest and files from the hub over HTTPS
    (``release_manifest_path``); the same order again is answered with where it stands."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rollout: int = Field(ge=1, le=2**31 - 1)
    version: VersionName


# -- releases over HTTPS ---------------------------------------------------------------------------

#: Where a door downloads releases from the hub, each request signed with the door's
#: certificate key (hafen.device_requests).
DEVICE_RELEASES_PATH = "/device/releases"


def release_manifest_path(version: str) -> str:
    """The signed manifest of one release (hafen.releases)."""
    return f"{DEVICE_RELEASES_PATH}/{version}/manifest"


def release_file_path(version: str, name: str) -> str:
    """One wheel of a release, by its file name in the manifest."""
    return f"{DEVICE_RELEASES_PATH}/{version}/files/{name}"


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
