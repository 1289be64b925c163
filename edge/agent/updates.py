"""The updater (edge.updater) put together for a running door: its parts from the config, its
hand-over through this process's door (edge.agent.handover), its health gate asked of the
running agent (edge.agent.health_gate).

Exit statuses: a new version that failed its gate after it became ``current`` (a start on
probation) switches back and ends with ``EXIT_SWITCHED_BACK``; a hand-over's child that did
not take the door ends with ``EXIT_NOT_TAKEN``. systemd starts ``current`` again after either.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from edge.agent.handover import TAKE_OVER_OPTION, HandOverTimes, OldSide, hand_over
from edge.agent.health_gate import wait_for_gate
from edge.updater.download import ReleaseSource
from edge.updater.fetching import Fetcher
from edge.updater.job import JOB_FILE, JobFile
from edge.updater.release_dirs import ReleaseDirs
from edge.updater.updater import Updater, UpdaterParts
from hafen import __version__

if TYPE_CHECKING:
    from edge.agent.runner import DoorService

log = logging.getLogger(__name__)

EXIT_SWITCHED_BACK = 76
EXIT_NOT_TAKEN = 77
#: Beyond the gate's own time, what the old side gives the child to say how it went.
GATE_MARGIN = 30.0


def build_updater(
    service: DoorService, argv: Sequence[str], handed_over: threading.Event
) -> Updater:
    """The updater of ``service``'s door; ``argv`` is this process's command line (without
    the program), which the new version is started with; ``handed_over`` is set when it
    took the door (this process then ends without touching it)."""
    cfg = service.cfg
    settings = cfg.updates
    assert settings is not None and cfg.mqtt is not None
    assert cfg.mqtt.key_file is not None and cfg.mqtt.cert_file is not None  # the config says
    source = ReleaseSource(
        settings.hub_url, settings.hub_ca_file, cfg.mqtt.key_file, cfg.mqtt.cert_file
    )
    fetcher = Fetcher(
        source,
        settings.trusted(),
        downloads=settings.root / "downloads",
        releases=settings.root / "releases",
    )
    own_args = without_take_over(argv)
    times = HandOverTimes(gate=settings.gate_seconds + GATE_MARGIN)

    def hand_over_to(release: Path, version: str, gate_passed: Callable[[], None]) -> str | None:
        command = [str(release / "bin" / "hafen"), *own_args]
        old = OldSide(service.close, service.open, service.notifier.notify)
        try:
            why = hand_over(command, old, gate_passed, times)
        except Exception as exc:  # the door could not be taken back (a self-test took it)
            why = f"the hand-over failed and the door was not taken back: {exc}"
        if why is None:
            handed_over.set()
            service.stop.set()
        elif service.agent is None:
            # No door open in this process: end it, and systemd starts current again.
            log.error("%s: starting again", why)
            service.exit_status = EXIT_SWITCHED_BACK
            service.stop.set()
        return why

    def gate() -> str | None:
        agent = service.agent
        if agent is None:
            return "the door is not open"
        return wait_for_gate(agent, settings.gate_seconds, service.stop)

    def restart() -> None:
        service.exit_status = EXIT_SWITCHED_BACK
        service.stop.set()

    return Updater(
        UpdaterParts(
            dirs=ReleaseDirs(settings.root),
            fetcher=fetcher,
            jobs=JobFile(cfg.store.path.parent / JOB_FILE),
            running=__version__,
            report=service.report,
            hand_over=hand_over_to,
            gate=gate,
            restart=restart,
            python=sys.executable,
        )
    )


def without_take_over(argv: Sequence[str]) -> list[str]:
    """``argv`` without a ``--take-over N`` (the new version gets a socket of its own)."""
    args, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == TAKE_OVER_OPTION:
            skip = True
        elif not arg.startswith(f"{TAKE_OVER_OPTION}="):
            args.append(arg)
    return args
