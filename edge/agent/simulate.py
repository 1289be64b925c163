"""The physical world around a simulated door: mock pins, a wire logger, a person walking through.

``hafen edge run --simulate`` puts the agent on gpiozero's mock pins and nfcpy's UDP reader; this
module supplies what hardware would: a door that is shut at start, someone who pushes it open
when the strike releases, and optionally a log of every pin change (a logic analyser on the
wires) that survives the agent being killed.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from gpiozero import Device
from gpiozero.pins.mock import MockFactory, MockPin

from edge.agent.config import DoorConfig, EdgeConfig

SIMULATED_READER = "udp:127.0.0.1:54321"
DEMO_SITE = "demo-space"


_wire_log: int | None = None
_observer: Callable[[str, bool], None] | None = None


class _RecordingPin(MockPin):
    """A mock pin that reports each change to the wire log and the observer, if set."""

    def _change_state(self, value: bool) -> bool:
        changed = super()._change_state(value)
        if changed and _wire_log is not None:
            line = f"{time.monotonic():.6f} {self.info.name} {int(value)}\n"
            os.write(_wire_log, line.encode())  # straight to the kernel: kill -9 cannot lose it
        if changed and _observer is not None:
            _observer(self.info.name, value)
        return changed


def use_mock_pins(pin_log: Path | None = None) -> MockFactory:
    """Make gpiozero use mock pins from now on, logging their changes to ``pin_log``."""
    global _wire_log
    if pin_log is not None:
        _wire_log = os.open(pin_log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    factory = MockFactory(pin_class=_RecordingPin)
    Device.pin_factory = factory
    return factory


def mock_pin(cfg_pin: int | str) -> MockPin:
    """The mock pin behind a configured pin number or name."""
    return Device.pin_factory.pin(cfg_pin)  # type: ignore[union-attr]


def shut_door(door: DoorConfig) -> None:
    """Put the simulated door leaf in its frame before the agent starts watching it."""
    if door.contact:
        pin = mock_pin(door.contact.pin)
        pin.drive_low() if door.contact.closed_level == "low" else pin.drive_high()


def open_door(door: DoorConfig, is_open: bool) -> None:
    """Move the simulated door leaf (needs a configured contact)."""
    assert door.contact is not None
    pin = mock_pin(door.contact.pin)
    closed_low = door.contact.closed_level == "low"
    if is_open == closed_low:
        pin.drive_high()
    else:
        pin.drive_low()


def press_exit(door: DoorConfig) -> None:
    """Press and release the simulated exit button."""
    assert door.exit_button is not None
    pin = mock_pin(door.exit_button.pin)
    press, release = (
        (pin.drive_low, pin.drive_high)
        if door.exit_button.pull_up
        else (
            pin.drive_high,
            pin.drive_low,
        )
    )
    press()
    time.sleep(0.05)
    release()


class SimulatedDoorway:
    """The door leaf in its frame and, with ``walk_through``, someone who pushes it open when
    the strike releases and lets it fall shut again. Start it after the agent has its pins."""

    def __init__(
        self,
        door: DoorConfig,
        walk_through: bool = True,
        say: Callable[[str], None] | None = None,
        open_after: float = 0.4,
        open_for: float = 2.0,
    ) -> None:
        self.door = door
        self.walk_through = walk_through
        self.say = say
        self.open_after = open_after
        self.open_for = open_for
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="walk-through", daemon=True)

    def start(self) -> None:
        global _observer
        shut_door(self.door)
        if self.say:
            _observer = self._narrate
        if self.door.contact and self.walk_through:
            self._thread.start()

    def stop(self) -> None:
        global _observer
        _observer = None
        self._stop.set()

    def _narrate(self, pin: str, high: bool) -> None:
        """Say what a bystander would see: the strike and the door leaf, not every pin."""
        assert self.say is not None
        if pin == mock_pin(self.door.strike.pin).info.name:
            self.say(
                "strike released: door unlocked" if _unlocked(self.door, high) else "strike locked"
            )
        elif self.door.contact and pin == mock_pin(self.door.contact.pin).info.name:
            self.say("door opened" if _open(self.door, high) else "door shut")

    def _run(self) -> None:
        relay = mock_pin(self.door.strike.pin)
        while not self._stop.wait(0.1):  # a person reacts in tenths of a second, not faster
            if not _unlocked(self.door, bool(relay.state)):
                continue
            if self._stop.wait(self.open_after):
                return
            open_door(self.door, True)
            self._stop.wait(self.open_for)
            open_door(self.door, False)


class World:
    """The simulated physical world's parts, started in order and stopped in reverse."""

    def __init__(self, parts: list) -> None:
        self.parts = parts

    def start(self) -> None:
        for part in self.parts:
            part.start()

    def stop(self) -> None:
        for part in reversed(self.parts):
            part.stop()


def simulated_co2(cfg: EdgeConfig, state_dir: Path):
    """Plug in the simulated CO2 sensor where the config expects it (only under
    ``state_dir``: a real port named in a config is never replaced by a link)."""
    from edge.drivers.co2_simulator import SimulatedCo2Sensor

    sensors = cfg.occupancy.co2 if cfg.occupancy else []
    if not sensors or Path(sensors[0].port).parent != state_dir:
        return None
    return SimulatedCo2Sensor(Path(sensors[0].port), sensors[0].model).start()


def simulated_config(base: EdgeConfig | None, state_dir: Path) -> EdgeConfig:
    """The config for ``--simulate``: the given one on the UDP reader, or a complete demo door;
    with the simulated space's PIRs and CO2 sensor where it has no [occupancy] of its own."""
    from edge.agent.simulated_space import occupancy_section
    from hafen.config import validate_config

    if base is not None:
        raw = base.model_dump(mode="json")
        raw["reader"].update(path=_udp(base.reader.path), targets=["106A"])
        for secret in ("hash_key", "password"):  # model_dump hides secrets: put them back
            for section in ("cards", "mqtt"):
                value = getattr(getattr(base, section, None), secret, None)
                if value is not None:
                    raw[section][secret] = value.get_secret_value()
    else:
        raw = {
            "site": {"id": DEMO_SITE, "timezone": "Europe/Berlin"},
            "device": {"id": "front-door"},
            "store": {"path": str(state_dir / "edge.db"), "synchronous": "normal"},
            "cards": {"hash_key": "5ca1ab1e" * 4},
            "reader": {"path": SIMULATED_READER, "targets": ["106A"]},
            "door": {
                "unlock_seconds": 3,
                "held_open_seconds": 20,
                "strike": {"pin": 17},
                "contact": {"pin": 27},
                "exit_button": {"pin": 22},
                "led": {"pin": 23},
                "buzzer": {"pin": 24},
            },
        }
    if raw.get("occupancy") is None:
        state_dir.mkdir(parents=True, exist_ok=True)
        raw["occupancy"] = occupancy_section(state_dir)
    return validate_config(raw, EdgeConfig, source="simulation defaults")


def _udp(path: str) -> str:
    return path if path.startswith("udp") else SIMULATED_READER


#: Members of the simulated space in the demo access list.
SIMULATED_MEMBERS = 40


def demo_access_list(site: str) -> dict:
    """A small access list for trying a simulated door: each card shows one outcome, plus the
    simulated space's members."""
    from edge.agent.simulated_space import simulated_card

    return {
        "site": site,
        "version": 1,
        "plans": [
            {"id": "flex", "sites": None},
            {
                "id": "office-hours",
                "windows": [
                    {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "08:00", "end": "18:00"}
                ],
            },
        ],
        "members": [
            {"id": "anna", "grants": [{"plan": "flex"}]},
            {"id": "ben", "grants": [{"plan": "flex", "valid_until": "2025-12-31"}]},
            {"id": "carla", "grants": [{"plan": "office-hours"}]},
            {"id": "dirk", "blocked": True, "grants": [{"plan": "flex"}]},
            # The simulated space's people (edge.agent.simulated_space).
            *(
                {"id": f"sim-{i:02d}", "grants": [{"plan": "flex"}]}
                for i in range(SIMULATED_MEMBERS)
            ),
        ],
        "cards": [
            {"uid": uid, "member": member}
            for uid, member in DEMO_CARDS.items()
            if member is not None
        ]
        + [
            {"uid": simulated_card(i).hex(), "member": f"sim-{i:02d}"}
            for i in range(SIMULATED_MEMBERS)
        ],
    }


#: Demo card UIDs and whose they are (None: a card the site does not know).
DEMO_CARDS: dict[str, str | None] = {
    "04A1B2C3D4E5F6": "anna",
    "04B2C3D4E5F607": "ben",
    "04C3D4E5F60718": "carla",
    "04D4E5F6071829": "dirk",
    "04E5F60718293A": None,
}


def default_state_dir() -> Path:
    """Where a simulated door keeps its store between runs."""
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "hafen" / "simulate"


def prepare(
    cfg: EdgeConfig | None, state_dir: Path, pin_log: Path | None, say: Callable[[str], None]
) -> EdgeConfig:
    """Set up the simulated world for a door: pins, a shut door, demo cards; return its config."""
    cfg = simulated_config(cfg, state_dir)
    use_mock_pins(pin_log)
    if cfg.site.id == DEMO_SITE:
        ensure_demo_access_list(cfg)
        cards = ", ".join(f"{uid} ({who or 'unknown'})" for uid, who in DEMO_CARDS.items())
        say(f"demo cards: {cards}")
    say(f"tap a card with: hafen edge tap UID --reader {cfg.reader.path}")
    return cfg


def ensure_demo_access_list(cfg: EdgeConfig) -> None:
    """Load the demo access list into a simulated door's store if it has none yet."""
    from zoneinfo import ZoneInfo

    from edge.agent.access_list import applied_version, apply_snapshot
    from edge.agent.store import EdgeStore
    from hafen.acl import AccessList

    store = EdgeStore(cfg.store.path, cfg.store.synchronous)
    try:
        if applied_version(store) == 0:
            acl = AccessList.model_validate(demo_access_list(cfg.site.id))
            apply_snapshot(store, acl, cfg.site.id, ZoneInfo(cfg.site.timezone), cfg.cards.key())
    finally:
        store.close()


def _unlocked(door: DoorConfig, level: bool) -> bool:
    energised = level == door.strike.active_high
    return energised == (door.fail_mode == "secure")


def _open(door: DoorConfig, level: bool) -> bool:
    assert door.contact is not None
    return level != (door.contact.closed_level == "high")
