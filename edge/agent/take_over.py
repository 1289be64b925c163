"""The new version's side of a hand-over (edge.agent.handover): ready, take the door, pass the
gate, and become the service's process, or stop without having touched the door."""

from __future__ import annotations

import importlib
import logging
import socket
from typing import TYPE_CHECKING

from edge.agent.door_claim import DoorInUse
from edge.agent.handover import CURRENT, HEALTHY, READY, RELEASED, UNHEALTHY, Channel
from edge.agent.health_gate import wait_for_gate
from edge.agent.updates import EXIT_NOT_TAKEN, GATE_MARGIN

if TYPE_CHECKING:
    from edge.agent.runner import DoorService

log = logging.getLogger(__name__)

#: How long the old version may take to let go of the door once this one is ready.
RELEASE_WAIT = 60.0
#: What the agent loads lazily, loaded before ``ready``: the door's gap is only the hand-over.
_WARM = (
    "edge.agent.link",
    "edge.agent.remote",
    "edge.agent.hub_commands",
    "edge.agent.renewal",
    "edge.agent.home_assistant",
    "nfc",
)


def take_the_door(sock: socket.socket, service: DoorService) -> None:
    """Take ``service``'s door from the old version on ``sock``; returns once this process
    is the service's (the old one ends). Raises SystemExit(EXIT_NOT_TAKEN) otherwise."""
    channel = Channel(sock)
    for module in _WARM:
        importlib.import_module(module)
    channel.send(READY)
    try:
        said = channel.receive(RELEASE_WAIT)
    except TimeoutError:
        said = None
    if said is None or said[0] != RELEASED:
        log.error("the old version did not let go of the door: not taking it")
        raise SystemExit(EXIT_NOT_TAKEN)
    try:
        service.open()
    except DoorInUse as exc:
        channel.send(UNHEALTHY, str(exc))
        raise SystemExit(EXIT_NOT_TAKEN) from None
    settings = service.cfg.updates
    gate_seconds = settings.gate_seconds if settings is not None else 60.0
    assert service.agent is not None
    why = wait_for_gate(service.agent, gate_seconds, service.stop)
    if why is not None:
        log.error("health gate failed: %s", why)
        service.close()
        channel.send(UNHEALTHY, why)
        raise SystemExit(EXIT_NOT_TAKEN)
    channel.send(HEALTHY)
    if not _told_current(channel, service, gate_seconds + GATE_MARGIN):
        log.error("the old version did not make this one current: letting go of the door")
        service.close()
        raise SystemExit(EXIT_NOT_TAKEN)
    channel.close()
    log.info("this version is current now")


def _told_current(channel: Channel, service: DoorService, seconds: float) -> bool:
    waited = 0.0
    while waited < seconds and not service.stop.is_set():
        try:
            said = channel.receive(0.5)
        except TimeoutError:
            waited += 0.5
            continue
        return said is not None and said[0] == CURRENT
    return False
