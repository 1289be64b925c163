"""A hub that remembers the door states its ingest received, and a registered door started as
the runner starts it (store checked, and recovered if damaged, before the agent opens it)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from edge.agent.agent import EdgeAgent
from edge.agent.recovery import Recovery, open_store
from hafen.protocol import DeviceState
from hub.services.sites import DeviceIn, add_device
from sim.card_emulator import EmulatedCard
from sim.door import shut_door
from tests.support.network import TestHub, edge_config
from tests.support.waiting import wait_for

SITE, DEVICE = "leipzig-ost", "door-1"


class RecordingHub(TestHub):
    """The test hub, keeping every door state its ingest received (and acted on)."""

    __test__ = False

    def __init__(self, *args, **kwargs) -> None:
        self.states: list[DeviceState] = []
        super().__init__(*args, **kwargs)

    def _catch_up(self, site: str, device: str, state: DeviceState) -> None:
        self.states.append(state)
        super()._catch_up(site, device, state)

    def register(self, site: str = SITE, device: str = DEVICE) -> None:
        self.add_site(site)
        add_device(self.engine, site, DeviceIn(id=device))

    def store_fault(self) -> str | None:
        """The ``store`` fault in the newest online state the hub received."""
        online = [s for s in self.states if s.online]
        return online[-1].faults.get("store") if online else None


@contextmanager
def healing_door(
    tmp_path: Path, hub: TestHub, store: Path | None = None, **door
) -> Iterator[tuple[EdgeAgent, EmulatedCard, Recovery | None]]:
    """A door linked to the test broker, its store at ``store`` (default: in ``tmp_path``),
    with housekeeping every 0.2 s."""
    sections = {"store": {"path": str(store), "synchronous": "normal"}} if store else None
    cfg = edge_config(tmp_path, hub, sections=sections, **door)
    opened, recovery = open_store(cfg.store.path, cfg.store.synchronous)
    agent = EdgeAgent(cfg, opened)
    agent.housekeeping.every = 0.2
    agent.start()
    shut_door(cfg.door)
    try:
        assert wait_for(lambda: agent.link is not None and agent.link.connected, 10)
        yield agent, EmulatedCard(cfg.reader.path), recovery
    finally:
        agent.stop()
        opened.close()
