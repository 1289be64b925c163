"""The door's updater: carries out the hub's update orders, one at a time, in its own thread.

It runs inside the door agent's process (edge.agent.runner builds it) but knows nothing of
the agent: the agent hands it orders, and it is given how to report a step (through the
outbox, so the hub learns each exactly once), how to hand the door over to a new version
and how to ask the new version's health gate. The phases and what a cut in each leaves are
in edge.updater.job; what a release must pass before it is installed in
edge.updater.fetching.

The old version decides at the door throughout the download and the install, and until the
new one is ready to take the reader (``hand_over``). The new version itself says ``healthy``,
after its gate passed; a gate that fails, or a new version that crash-loops during its
probation (counted by the launcher), puts the old one back, which says ``rolled_back`` and why.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from edge.updater.fetching import Fetcher, NoRoom, Refused
from edge.updater.installer import InstallFailed, install_release
from edge.updater.job import MAX_SWITCHES, JobFile, Phase, UpdateJob
from edge.updater.release_dirs import ReleaseDirs
from hafen.protocol import UpdateOrder, UpdateReport
from hafen.releases import Manifest

log = logging.getLogger(__name__)

#: How long the new version's starts are counted for a crash-loop after the switch.
PROBATION = timedelta(minutes=10)
#: A start that has run healthily this long is not part of a crash-loop: the count of starts
#: begins again (a technician's restarts, spaced out, never add up to a switch back).
STEADY_SECONDS = 120.0
#: Waits between tries of a download that failed (the hub or the network away).
RETRY_WAITS = (5.0, 15.0, 30.0, 60.0, 120.0, 300.0)


class HandOver(Protocol):
    def __call__(self, release: Path, version: str, gate_passed: Callable[[], None]) -> str | None:
        """Start the release at ``release`` beside this process and hand the door to it once
        it is ready; ``gate_passed`` is called when its health gate passed, before it is
        told it runs now. None: it took over (this process ends); else why not (this
        process drives the door again)."""
        ...


@dataclass
class UpdaterParts:
    """What the updater works with; the agent's runner makes them from the config."""

    dirs: ReleaseDirs
    fetcher: Fetcher
    jobs: JobFile
    #: The version this process runs.
    running: str
    #: Records an update report in the outbox; returns once it is written.
    report: Callable[[UpdateReport], None]
    hand_over: HandOver
    #: Waits for this version's health gate: None when it passed, else why not.
    gate: Callable[[], str | None]
    #: Ends this process so that the service manager starts ``current`` (after a switch back).
    restart: Callable[[], None]
    python: str
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)


class Updater:
    """Takes orders (``order``) from the door's loop and works on them in its own thread."""

    def __init__(self, parts: UpdaterParts) -> None:
        self.parts = parts
        self._orders: queue.SimpleQueue[UpdateOrder | None] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="updater", daemon=True)
        self._lock = threading.RLock()
        #: An order taken and not yet begun (the thread begins it): the next is busy.
        self._pending: UpdateOrder | None = None
        self._timers: list[threading.Timer] = []

    def start(self, gate_passed: bool = False) -> None:
        """Resume the job in hand, if any; ``gate_passed``: this process is the new version
        that passed its gate while taking the door over."""
        self._gate_passed = gate_passed
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        for timer in self._timers:
            timer.cancel()
        self._orders.put(None)
        self._thread.join(5)

    def order(self, order: UpdateOrder) -> tuple[bool, str]:
        """An order from the hub (called on the door's loop: returns at once). Returns
        whether it is taken, and where the door stands with it."""
        with self._lock:
            job = self.parts.jobs.load()
            if job is not None and (job.rollout, job.version) == (order.rollout, order.version):
                return True, f"{job.phase.value} {job.detail}".strip()
            if job is not None and not job.phase.done:
                return False, f"busy with the update to {job.version} ({job.phase.value})"
            pending = self._pending
            if pending is not None and pending != order:
                return False, f"busy with the update to {pending.version} (ordered)"
            if pending is None:
                self._pending = order
                self._orders.put(order)
            return True, "ordered"

    # -- the thread ----------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._resume()
        except Exception as exc:
            log.exception("resuming the update failed")
            self._broke_off(exc)
        while not self._stopping.is_set():
            order = self._orders.get()
            if order is None:
                return
            try:
                self._begin(order)
            except Exception as exc:
                log.exception("the update to %s failed", order.version)
                self._broke_off(exc)
            finally:
                with self._lock:
                    self._pending = None

    def _broke_off(self, exc: Exception) -> None:
        """An error no step foresaw (a disk error, the door not taken back): the job ends
        failed with why, so that nothing stays busy, and the hub may order again."""
        job = self.parts.jobs.load()
        if job is None or job.phase.done:
            return
        try:
            self._finish(job, Phase.FAILED, f"the update broke off: {exc}")
        except Exception:
            log.exception("the update's failure could not be recorded")

    def _resume(self) -> None:
        """Carry on with the job a start found (see edge.updater.job)."""
        job = self.parts.jobs.load()
        if job is None:
            return
        running = self.parts.running
        if job.phase.done:
            if not job.reported:
                self._tell(job)
            if job.phase == Phase.HEALTHY and running == job.version:
                self._confirm(job)  # started again on probation: the gate again
            return
        if job.phase in (Phase.PROBATION, Phase.SWITCHING) and running == job.version:
            self._confirm(job)
        elif running != job.from_version:
            self._finish(job, Phase.FAILED, f"the door runs {running}, not {job.from_version}")
        elif job.phase == Phase.PROBATION:
            self._finish(job, Phase.ROLLED_BACK, f"{job.version} did not stay running")
        else:
            self._tell(job)  # the phase once more: the hub may not have heard it
            self._work(job)

    def _begin(self, order: UpdateOrder) -> None:
        self.parts.fetcher.forget_all_but(order.version)  # what failed updates left
        before = self.parts.jobs.load()
        if before is not None and (before.rollout, before.version) == (
            order.rollout,
            order.version,
        ):
            return  # the hub sent the order again before it heard of the first
        running = self.parts.running
        job = UpdateJob(
            rollout=order.rollout,
            version=order.version,
            from_version=running,
            phase=Phase.DOWNLOADING,
            ordered_at=self.parts.clock(),
        )
        if order.version == running:
            self._finish(job, Phase.HEALTHY, f"already running {running}")
            return
        self._save(job)
        self._tell(job)
        self._work(job)

    def _work(self, job: UpdateJob) -> None:
        """From the job's phase to the hand-over (or to why not)."""
        if job.phase in (Phase.DOWNLOADING, Phase.INSTALLING):
            manifest = self._fetch(job)
            if manifest is None:
                return
            job = self._save(job.moved(Phase.INSTALLING))
            try:
                self._install(manifest)
            except InstallFailed as exc:
                self.parts.fetcher.forget(job.version)
                self._finish(job, Phase.FAILED, str(exc))
                return
            self.parts.fetcher.forget(job.version)
            job = self._save(job.moved(Phase.INSTALLED))
            self._tell(job)
        self._switch(job)

    def _fetch(self, job: UpdateJob) -> Manifest | None:
        """The release downloaded and checked, retried while the hub cannot be reached;
        None when the job ended (refused, no room, or no download after every retry)."""
        fetcher = self.parts.fetcher
        for wait in (*RETRY_WAITS, None):
            try:
                manifest = fetcher.manifest(job.version, job.from_version)
                fetcher.check_room(manifest)
                fetcher.download(manifest)
                return manifest
            except Refused as exc:
                fetcher.forget(job.version)
                self._finish(job, Phase.REFUSED, str(exc))
                return None
            except NoRoom as exc:
                self._finish(job, Phase.FAILED, str(exc))
                return None
            except Exception as exc:  # the source's errors: unreachable, HTTP, TLS
                if wait is None:
                    fetcher.forget(job.version)
                    self._finish(job, Phase.FAILED, f"download: {exc}")
                    return None
                log.warning("downloading %s failed (%s): again in %.0f s", job.version, exc, wait)
                if self._stopping.wait(wait):
                    return None
        return None

    def _install(self, manifest: Manifest) -> None:
        dirs = self.parts.dirs
        if dirs.is_complete(manifest.version):
            return
        target = dirs.staging(manifest.version)
        wheels = self.parts.fetcher.downloads / manifest.version
        install_release(manifest, wheels, target, self.parts.python)
        dirs.complete(manifest.version)

    def _switch(self, job: UpdateJob) -> None:
        if job.switches >= MAX_SWITCHES:
            self._finish(job, Phase.FAILED, f"the switch was cut off {job.switches} times")
            return
        job = self._save(
            job.moved(Phase.SWITCHING).model_copy(update={"switches": job.switches + 1})
        )
        self._tell(job)
        dirs = self.parts.dirs

        def gate_passed() -> None:
            # On probation first, then current: a cut between the two leaves the old version
            # current and the job on probation, which the old one's start ends as rolled
            # back; the other order would leave a new version current that the launcher
            # does not watch for a crash-loop.
            until = self.parts.clock() + PROBATION
            self._save(job.moved(Phase.PROBATION).model_copy(update={"probation_until": until}))
            dirs.switch_to(job.version)

        why = self.parts.hand_over(dirs.path(job.version), job.version, gate_passed)
        if why is None:
            log.info("handed the door over to %s", job.version)
            return  # the new version reports from here on; this process ends
        if dirs.current() == job.version:
            dirs.switch_back()
        self._finish(job, Phase.ROLLED_BACK, why)

    def _confirm(self, job: UpdateJob) -> None:
        """This is the new version, on probation: its gate decides, at every start until the
        probation ends (a start that passes it and runs on is no part of a crash-loop)."""
        until = job.probation_until or self.parts.clock() + PROBATION
        if self.parts.clock() >= until and job.phase == Phase.HEALTHY:
            self._end_probation()
            return
        why = None if self._gate_passed else self.parts.gate()
        if why is not None:
            self.parts.dirs.switch_back()
            self._save(job.moved(Phase.ROLLED_BACK, why))  # said by the old one, at its start
            log.error("the health gate of %s failed (%s): switching back", job.version, why)
            self.parts.restart()
            return
        job = job.model_copy(update={"probation_until": until})
        if job.phase != Phase.HEALTHY:
            self._finish(job, Phase.HEALTHY, "")
        self._later(STEADY_SECONDS, self._steady)
        self._later((until - self.parts.clock()).total_seconds(), self._end_probation)

    def _later(self, seconds: float, work: Callable[[], None]) -> None:
        """Run ``work`` in ``seconds`` (at once if they are past), not on the order thread."""
        timer = threading.Timer(max(0.0, seconds), work)
        timer.daemon = True
        self._timers.append(timer)
        timer.start()

    def _steady(self) -> None:
        """This start ran healthily for STEADY_SECONDS: its starts so far are forgiven."""
        with self._lock:
            self.parts.jobs.forgive_starts()

    def _end_probation(self) -> None:
        """Once the probation is over, only the two newest releases are kept."""
        if self._stopping.is_set():
            return
        with self._lock:
            removed = self.parts.dirs.prune()
        if removed:
            log.info("releases removed: %s", ", ".join(removed))

    # -- bookkeeping ---------------------------------------------------------------------------
    def _finish(self, job: UpdateJob, phase: Phase, detail: str) -> None:
        job = self._save(job.moved(phase, detail))
        if detail:
            log.warning("update to %s: %s (%s)", job.version, phase.value, detail)
        self._tell(job)

    def _tell(self, job: UpdateJob) -> None:
        """Report the job's phase to the hub through the outbox; a done job is marked told."""
        self.parts.report(
            UpdateReport(
                rollout=job.rollout,
                version=job.version,
                step=job.phase.step,
                running=self.parts.running,
                detail=job.detail,
            )
        )
        if job.phase.done and not job.reported:
            self._save(job.model_copy(update={"reported": True}))

    def _save(self, job: UpdateJob) -> UpdateJob:
        self.parts.jobs.save(job)
        with self._lock:  # the order taken is begun: the job file answers for it now
            pending = self._pending
            if pending is not None and (pending.rollout, pending.version) == (
                job.rollout,
                job.version,
            ):
                self._pending = None
        return job
