"""One simulated site for ``hafen edge run --simulate``: its config, demo cards and world.

The agent itself is the production one (``edge.agent.runner``); only what hardware and people
would supply is simulated: mock pins with a doorway, a CO2 sensor on a pty, members who tap.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from edge.agent.access_list import applied_version, apply_snapshot
from edge.agent.config import EdgeConfig
from edge.agent.store import EdgeStore
from edge.agent.store_check import check_store
from hafen.acl import AccessList
from hafen.config import validate_config
from sim.co2_sensor import SimulatedCo2Sensor
from sim.door import SimulatedDoorway, World, WorldPart, use_mock_pins
from sim.space import SimulatedSpace, occupancy_section, simulated_card

SIMULATED_READER = "udp:127.0.0.1:54321"
DEMO_SITE = "demo-space"


def simulated_co2(cfg: EdgeConfig, state_dir: Path) -> SimulatedCo2Sensor | None:
    """Plug in the simulated CO2 sensor where the config expects it (only under
    ``state_dir``: a real port named in a config is never replaced by a link)."""
    sensors = cfg.occupancy.co2 if cfg.occupancy else []
    if not sensors or Path(sensors[0].port).parent != state_dir:
        return None
    return SimulatedCo2Sensor(Path(sensors[0].port), sensors[0].model).start()


def simulated_config(base: EdgeConfig | None, state_dir: Path) -> EdgeConfig:
    """The config for ``--simulate``: the given one on the UDP reader, or a complete demo door;
    with the simulated space's PIRs and CO2 sensor where it has no [occupancy] of its own."""
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


def demo_access_list(site: str) -> dict[str, Any]:
    """A small access list for trying a simulated door: each card shows one outcome, plus the
    simulated space's members."""
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
            # The simulated space's people (sim.space).
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
    """Load the demo access list into a simulated door's store if it has none yet.

    A damaged store is left to the agent, which moves it aside, reports it and asks the hub
    for a list (docs/edge.md, "When the store fails"), as it would on a real door.
    """
    if check_store(cfg.store.path) is not None:
        return
    store = EdgeStore(cfg.store.path, cfg.store.synchronous)
    try:
        if applied_version(store) == 0:
            acl = AccessList.model_validate(demo_access_list(cfg.site.id))
            apply_snapshot(store, acl, cfg.site.id, ZoneInfo(cfg.site.timezone), cfg.cards.key())
    finally:
        store.close()


def run_simulated(
    cfg: EdgeConfig | None,
    state_dir: Path | None = None,
    pin_log: Path | None = None,
    walk_through: bool = True,
    people: int = 12,
    speed: float = 60.0,
    cards: list[int] | None = None,
    take_over: int | None = None,
) -> None:
    """Run the production door agent in a simulated world (a doorway, and with ``people`` or
    ``cards`` a space whose members come and go) until SIGTERM or SIGINT; ``take_over``: as
    the new version in an update's hand-over (edge.agent.runner)."""
    from edge.agent.runner import run_agent

    say = logging.getLogger("sim").info
    state_dir = state_dir or default_state_dir()
    cfg = prepare(cfg, state_dir, pin_log, say)
    co2 = simulated_co2(cfg, state_dir)  # plugged in before the agent looks for it
    parts: list[WorldPart] = [SimulatedDoorway(cfg.door, walk_through, say)]
    if (people or cards) and walk_through:
        parts.append(SimulatedSpace(cfg, people, speed, co2=co2, say=say, cards=cards))
    try:
        run_agent(cfg, World(parts), take_over=take_over)
    finally:
        if co2 is not None:
            co2.unplug()
