"""What a device says: the payload models of its events, each validated alike by the edge that
writes it to its outbox and by the hub that stores it (``hafen.protocol`` carries them: topics,
envelopes, sizes). docs/protocol.md describes each kind with an example.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from hafen.ids import Slug


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
    UPDATE = "device.update"


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


class UpdateStep(StrEnum):
    """Where a door's update of its software stands (edge.updater), in the order they come.

    ``healthy`` is said by the new version itself, once its health gate passed; ``rolled_back``
    by the old one, running again, with why; ``refused`` means the release was not installed
    (its signature, a file's hash, an older version): nothing changed.
    """

    DOWNLOADING = "downloading"
    INSTALLED = "installed"
    RESTARTING = "restarting"
    HEALTHY = "healthy"
    ROLLED_BACK = "rolled_back"
    FAILED = "failed"
    REFUSED = "refused"


#: A release version as a door reports it (PEP 440 is checked where a manifest is read): at
#: most 40 characters, as the door's state says which version it runs.
VersionName = Annotated[str, Field(pattern=r"^[0-9A-Za-z][0-9A-Za-z.+!_-]{0,39}$")]
#: The longest why an update report carries.
MAX_UPDATE_DETAIL = 300


class UpdateReport(EventPayload):
    """A step of the door's update to ``version`` for ``rollout`` (None: an update a
    technician started on the door). ``running`` is the version that says it."""

    #: Strict: a string here would sort against the numbers of other doors' reports.
    rollout: int | None = Field(default=None, ge=1, le=2**31 - 1, strict=True)
    version: VersionName
    step: UpdateStep
    running: VersionName
    detail: Annotated[str, Field(max_length=MAX_UPDATE_DETAIL)] = ""


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
    EventKind.UPDATE: UpdateReport,
}


def kind_of(payload: EventPayload) -> EventKind:
    """Return the event kind that a payload model is sent as."""
    for kind, model in PAYLOAD_MODELS.items():
        if isinstance(payload, model):
            return kind
    raise TypeError(f"{type(payload).__name__} is not an event payload")
