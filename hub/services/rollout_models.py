"""What a rollout of a release to the fleet is, in and out (hub.services.rollouts): the
request that makes one, its stages, and how it and each of its doors stand.

Stages are written as a network admin thinks of them, cumulative: ``1,10%,100%`` is one
canary door, then up to a tenth of the targets, then all of them. A count is doors, a share
(``N%``) is of the doors the rollout updates; the last stage is always ``100%``.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    computed_field,
    field_validator,
    model_validator,
)

from hafen.ids import SLUG_PATTERN, Slug
from hafen.payloads import UpdateStep, VersionName

#: The most doors one rollout updates, and the most stages it goes through.
MAX_DEVICES = 10_000
MAX_STAGES = 10
#: The sites one request may name.
MAX_SITES = 1_000
#: Unless a rollout says otherwise: a canary, a tenth, then all; 30 minutes per door.
DEFAULT_STAGES = "1,10%,100%"
DEFAULT_DEADLINE_MINUTES = 30
#: A door ordered longer ago than this without an outcome is failed: a week at most.
MAX_DEADLINE_MINUTES = 7 * 24 * 60
_STAGE = re.compile(r"^(?:(?P<count>\d{1,5})|(?P<share>\d{1,3})%)$")
#: A device as a target: ``site/device``.
_ID = SLUG_PATTERN.strip("^$")
_DEVICE_REF = re.compile(f"^{_ID}/{_ID}$")


def _device_ref(value: str) -> str:
    if not _DEVICE_REF.match(value):
        raise ValueError(f"{value[:80]!r}: write a device as site/device, e.g. borna/door-1")
    return value


DeviceRef = Annotated[str, Field(max_length=127), AfterValidator(_device_ref)]


class RolloutState(StrEnum):
    """``running`` orders doors stage by stage; ``paused`` (by an admin, or by itself when
    failures pass a limit) orders none, while doors ordered go on; ``aborted`` orders none
    again; ``done``: every stage's doors reached an end."""

    RUNNING = "running"
    PAUSED = "paused"
    ABORTED = "aborted"
    DONE = "done"


#: The states in which a rollout holds its doors (no other live rollout may take them).
LIVE = (RolloutState.RUNNING, RolloutState.PAUSED)


def parse_stages(spec: str) -> list[tuple[str, int]]:
    """``1,10%,100%`` as [("count", 1), ("share", 10), ("share", 100)]; ValueError naming
    what is wrong and what would work."""
    example = f"write them like {DEFAULT_STAGES} (1 door, then up to 10 % of them, then all)"
    parts = [part.strip() for part in spec.split(",")]
    if not spec.strip() or len(parts) > MAX_STAGES:
        raise ValueError(f"give 1 to {MAX_STAGES} stages; {example}")
    stages: list[tuple[str, int]] = []
    for part in parts:
        found = _STAGE.match(part)
        if found is None:
            raise ValueError(f"{part[:20]!r} is neither a count of doors nor a share; {example}")
        if found["count"] is not None:
            stage = ("count", int(found["count"]))
            if not 1 <= stage[1] <= MAX_DEVICES:
                raise ValueError(f"{part!r}: a stage counts 1 to {MAX_DEVICES:,} doors")
        else:
            stage = ("share", int(found["share"]))
            if not 1 <= stage[1] <= 100:
                raise ValueError(f"{part!r}: a share is 1% to 100%")
        stages.append(stage)
    if stages[-1] != ("share", 100):
        raise ValueError(
            f"the last stage must be 100% (every door the rollout targets), not {parts[-1]!r};"
            " to update fewer doors, name their sites or the devices themselves"
        )
    return stages


def stage_sizes(spec: str, doors: int) -> list[int]:
    """How many doors each stage reaches, cumulative (never fewer than the stage before)."""
    sizes: list[int] = []
    for kind, value in parse_stages(spec):
        size = min(value, doors) if kind == "count" else math.ceil(doors * value / 100)
        sizes.append(max(size, sizes[-1] if sizes else 0))
    return sizes


class RolloutIn(BaseModel):
    """A rollout to start: ``version`` (a release the hub holds) to the whole network (no
    ``sites``, no ``devices``), or to the doors of ``sites`` and the ``devices`` named
    (``site/device``). It pauses by itself when failures pass ``max_failures`` or
    ``max_failure_share`` of the doors of the stages reached; without either, at the first
    failure. A door ordered that reports no outcome within ``deadline_minutes`` is failed.
    ``rollback``: it may take doors back to ``version`` from a newer one they run, which
    needs a signed rollback held for each such version (hafen hub release rollback); without
    it, a rollout to a version older than a door's is refused, so a typo downgrades none."""

    model_config = ConfigDict(extra="forbid")

    version: VersionName
    sites: Annotated[list[Slug], Field(min_length=1, max_length=MAX_SITES)] | None = None
    devices: Annotated[list[DeviceRef], Field(min_length=1, max_length=MAX_DEVICES)] | None = None
    stages: Annotated[str, Field(max_length=200)] = DEFAULT_STAGES
    max_failures: Annotated[int, Field(ge=0, le=MAX_DEVICES)] | None = None
    max_failure_share: Annotated[float, Field(gt=0, le=1)] | None = None
    deadline_minutes: Annotated[int, Field(ge=1, le=MAX_DEADLINE_MINUTES)] = (
        DEFAULT_DEADLINE_MINUTES
    )
    rollback: bool = False

    @field_validator("stages")
    @classmethod
    def _stages(cls, value: str) -> str:
        parse_stages(value)
        return ",".join(part.strip() for part in value.split(","))

    @model_validator(mode="after")
    def _a_limit(self) -> RolloutIn:
        if self.max_failures is None and self.max_failure_share is None:
            self.max_failures = 0  # the canary's rule: any failure pauses
        return self


#: Where a rollout's reason for pausing by itself names its last failed door (who may not
#: see that door's site is shown the reason without it: hub.services.rollout_reads).
LAST_DOOR = "; last "


class RolloutTarget(BaseModel):
    """What a rollout was asked to reach; neither: the whole network."""

    sites: list[str] | None = None
    devices: list[str] | None = None

    def describe(self) -> str:
        if self.sites is None and self.devices is None:
            return "the whole network"
        if not self.sites and not self.devices:
            return "doors of other sites"  # as one who sees none of them sees it
        parts = []
        if self.sites:
            parts.append(f"sites {', '.join(self.sites)}")
        if self.devices:
            shown = ", ".join(self.devices[:5])
            more = f" and {len(self.devices) - 5} more" if len(self.devices) > 5 else ""
            parts.append(f"devices {shown}{more}")
        return "; ".join(parts)


class Rollout(BaseModel):
    """A rollout as listed: what it updates, how far it is, and the doors' steps counted
    (``steps``: step -> doors, of the doors the asker may see)."""

    id: int
    version: str
    target: RolloutTarget
    stages: str
    stage: int
    stage_count: int
    max_failures: int | None
    max_failure_share: float | None
    accepted_failures: int
    deadline_minutes: int
    state: RolloutState
    #: Why it is paused or was aborted: "by nadia", or "by itself: ..." with the failures.
    paused_reason: str | None
    created_by: str
    created_at: datetime
    updated_at: datetime
    device_count: int
    failures: int
    steps: dict[str, int]


class StepEntry(BaseModel):
    """One step in a door's history; ``ignored``: it came too late to count."""

    model_config = ConfigDict(extra="ignore")

    step: str
    at: datetime
    detail: str = ""
    ignored: bool = False


class Waiting(StrEnum):
    """What a door not ordered yet waits for, in the order the driver asks (the first that
    holds): the rollout to run again, its stage to begin, to be back online, its site's
    update window; else nothing but the driver's next round."""

    NOT_RUNNING = "not_running"
    STAGE = "stage"
    OFFLINE = "offline"
    WINDOW = "window"
    NEXT_ROUND = "next_round"

    def says(self, state: str, stage: int) -> str:
        """In words, for a door of ``stage`` in a rollout that is ``state``."""
        return {
            Waiting.NOT_RUNNING: f"not ordered: the rollout is {state}",
            Waiting.STAGE: f"stage {stage} has not begun",
            Waiting.OFFLINE: "offline: ordered once it is back",
            Waiting.WINDOW: "outside its site's update window",
            Waiting.NEXT_ROUND: "to be ordered",
        }[self]


class RolloutDevice(BaseModel):
    """One door's part: its stage (0: it ran the version already), its step and its detail
    (the door's words, or the hub's: "already on it", a missed deadline), and, while it is
    not ordered, what it waits for (``waits_for``, and ``waiting`` in words); ``why`` is
    what to show beside the step."""

    site: str
    device: str
    stage: int
    step: str
    detail: str
    from_version: str | None
    ordered_at: datetime | None
    last_order_at: datetime | None
    deadline_at: datetime | None
    step_at: datetime | None
    history: list[StepEntry]
    waits_for: Waiting | None = None
    waiting: str | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def rolled_back(self) -> str | None:
        """Why the door last rolled back (its own words), if it did and counted: a door may
        roll back and then fail, or report healthy after its rollback was recorded."""
        back = [h for h in self.history if h.step == UpdateStep.ROLLED_BACK and not h.ignored]
        return back[-1].detail or None if back else None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def why(self) -> str:
        """The step's why in one line: the detail, else what it waits for, with the last
        rollback's reason when that is another."""
        why = self.detail or self.waiting or ""
        if self.rolled_back and self.rolled_back != why:
            why = f"{why} (rolled back: {self.rolled_back})" if why else self.rolled_back
        return why


class RolloutStage(BaseModel):
    """A stage: as written, how many doors it added, their steps counted, and whether each
    reached an end."""

    number: int
    spec: str
    device_count: int
    steps: dict[str, int]
    finished: bool


class RolloutDetail(Rollout):
    """A rollout with its stages and each door the asker may see."""

    stage_list: list[RolloutStage]
    device_list: list[RolloutDevice]
