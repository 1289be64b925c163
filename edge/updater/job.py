"""The one update a door works on, kept in a file so that every step survives a power cut.

An update moves through these phases, each saved (atomically, synced) before its work
begins, so that a start after a cut resumes the phase it was in and does its work again; each
step's work is idempotent (a file downloaded and checked is kept, a release without its
marker is installed again, a link is renamed over again):

- ``downloading``: the manifest is fetched and checked, room on the disk checked, the files
  downloaded and hashed. After a cut: what is missing is downloaded.
- ``installing``: the release's venv is made in ``releases/<version>/``. After a cut: made
  again from its start.
- ``installed``: complete, not running. After a cut: the switch starts.
- ``switching``: the new version starts beside the old one and takes the door over. After a
  cut: the old one runs (``current`` was not switched yet) and starts the switch again, at
  most ``MAX_SWITCHES`` times; or ``current`` was switched, and the new one runs its gate.
- ``probation``: ``current`` is the new version; it must pass its health gate, and not
  crash-loop until ``probation_until`` (the launcher counts its starts).
- ``healthy``, ``rolled_back``, ``failed``, ``refused``: done; kept, so that the same order
  again is answered from here, and told once more at a start if the hub was not yet told.

The file is read by the launcher too (provisioning/launch.py: the Python standard library
alone), so its format is plain JSON, versioned by ``schema``.
"""

from __future__ import annotations

import logging
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from hafen.files import write_atomically
from hafen.payloads import MAX_UPDATE_DETAIL, UpdateStep, VersionName

log = logging.getLogger(__name__)

#: The job file beside the store (``/var/lib/hafen/update.json``).
JOB_FILE = "update.json"
#: How often a switch cut off in the middle is started again before the update fails.
MAX_SWITCHES = 3
#: The largest job file read (it is a few hundred bytes).
MAX_JOB_BYTES = 16 * 1024


class Phase(StrEnum):
    DOWNLOADING = "downloading"
    INSTALLING = "installing"
    INSTALLED = "installed"
    SWITCHING = "switching"
    PROBATION = "probation"
    HEALTHY = "healthy"
    ROLLED_BACK = "rolled_back"
    FAILED = "failed"
    REFUSED = "refused"

    @property
    def done(self) -> bool:
        return self in (Phase.HEALTHY, Phase.ROLLED_BACK, Phase.FAILED, Phase.REFUSED)

    @property
    def step(self) -> UpdateStep:
        """The step the hub is told for this phase."""
        return _STEPS[self]


_STEPS = {
    Phase.DOWNLOADING: UpdateStep.DOWNLOADING,
    Phase.INSTALLING: UpdateStep.DOWNLOADING,
    Phase.INSTALLED: UpdateStep.INSTALLED,
    Phase.SWITCHING: UpdateStep.RESTARTING,
    Phase.PROBATION: UpdateStep.RESTARTING,
    Phase.HEALTHY: UpdateStep.HEALTHY,
    Phase.ROLLED_BACK: UpdateStep.ROLLED_BACK,
    Phase.FAILED: UpdateStep.FAILED,
    Phase.REFUSED: UpdateStep.REFUSED,
}


class UpdateJob(BaseModel):
    """The update in hand: for which rollout, from which version to which, and where it is."""

    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[1] = Field(1, alias="schema")
    rollout: int | None = Field(default=None, ge=1, le=2**31 - 1)
    version: VersionName
    from_version: VersionName
    phase: Phase
    detail: Annotated[str, Field(max_length=MAX_UPDATE_DETAIL)] = ""
    #: Whether the hub was told the phase (through the outbox): a done job not yet told is
    #: told at the next start.
    reported: bool = False
    #: How often the switch was started (a cut in the middle counts).
    switches: int = Field(default=0, ge=0, le=1000)
    ordered_at: AwareDatetime
    #: While on probation: until when, and how often the new version was started meanwhile.
    probation_until: AwareDatetime | None = None
    starts: int = Field(default=0, ge=0, le=1000)

    def moved(self, phase: Phase, detail: str = "") -> UpdateJob:
        """This job in ``phase`` (not yet reported), with why."""
        return self.model_copy(
            update={"phase": phase, "detail": detail[:MAX_UPDATE_DETAIL], "reported": False}
        )


class JobFile:
    """The job file: ``load`` what is there (None: no update in hand), ``save`` a new state."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> UpdateJob | None:
        try:
            data = self.path.read_bytes()[: MAX_JOB_BYTES + 1]
        except FileNotFoundError:
            return None
        if len(data) > MAX_JOB_BYTES:
            log.error("the update job %s is over %d bytes: ignored", self.path, MAX_JOB_BYTES)
            return None
        try:
            return UpdateJob.model_validate_json(data)
        except ValidationError as exc:
            # A damaged file names no update the door could resume: the hub's deadline will
            # mark it failed, and a new order starts afresh.
            log.error("the update job %s does not read (%s): ignored", self.path, exc)
            return None

    def save(self, job: UpdateJob) -> None:
        text = job.model_dump_json(by_alias=True, exclude_none=True)
        write_atomically(self.path, text.encode(), mode=0o600)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)

    def forgive_starts(self, starts: int | None = None) -> None:
        """Take back starts the launcher counted on probation: all of them (the version ran
        healthily long enough) or ``starts`` (a start that ended for a reason of its own,
        such as a self-test holding the door)."""
        job = self.load()
        if job is None or job.starts == 0:
            return
        left = 0 if starts is None else max(0, job.starts - starts)
        self.save(job.model_copy(update={"starts": left}))

