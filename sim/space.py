"""People at a simulated space, for ``hafen edge run --simulate`` and the demo.

They play scripted days (edge.agent.occupancy_script), compressed by ``speed``: each taps a
card on nfcpy's UDP reader to come in, moves about in a room (its PIR pin rises now and then),
and leaves by the exit button; the doorway (SimulatedDoorway) opens the door whenever the
strike releases. A simulated CO2 sensor on a pty breathes with the headcount. Only the physical
world is simulated: the agent reads it through nfcpy, gpiozero and pyserial as on a Pi.
"""

from __future__ import annotations

import heapq
import logging
import math
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge.agent.config import EdgeConfig
from sim.co2_sensor import SimulatedCo2Sensor
from sim.door import mock_pin, press_exit
from sim.occupancy_script import ROOMS, make_day

log = logging.getLogger(__name__)

#: PIR pins and the CO2 sensor's port of a simulated space (its config's [occupancy]).
ROOM_PINS = {"coworking": 5, "meeting": 6}
OUTDOOR_PPM = 420
PPM_PER_PERSON = 35


def simulated_card(index: int) -> bytes:
    """The card UID of simulated member ``index`` (7 bytes, NXP-style 0x04 first)."""
    return bytes([0x04]) + (0x5100_0000_0000 + index).to_bytes(6, "big")


def occupancy_section(state_dir: Path, capacity: int = 20) -> dict[str, Any]:
    """The [occupancy] config of a simulated space: two rooms with PIRs, one CO2 sensor."""
    return {
        "capacity": capacity,
        "rooms": [{"name": name, "pin": pin} for name, pin in ROOM_PINS.items()],
        "co2": [{"name": "air", "port": str(state_dir / "co2"), "model": "mhz19b"}],
    }


class SimulatedSpace:
    """Members coming and going through a compressed day, again and again."""

    def __init__(
        self,
        cfg: EdgeConfig,
        people: int = 12,
        speed: float = 60.0,
        seed: int | None = None,
        co2: SimulatedCo2Sensor | None = None,
        say: Callable[[str], None] | None = None,
        cards: list[int] | None = None,
    ) -> None:
        """``cards``: the simulated card each person carries (``simulated_card(n)``); by
        default person i carries card i, so that spaces of a network can have their own."""
        from sim.card_emulator import EmulatedCard

        self.cfg = cfg
        self.people = len(cards) if cards else people
        self.cards = cards or list(range(people))
        self.speed = speed
        self.rng = random.Random(seed)
        self.say = say or log.info
        self.card = EmulatedCard(cfg.reader.path)
        self.co2 = co2
        self.inside: dict[int, str] = {}  # member index -> room
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="simulated-space", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        day = 0
        while not self._stop.is_set():
            self._play_day(day)
            day += 1

    def _play_day(self, day: int) -> None:
        """One scripted day from 07:00 to 22:00, ``speed`` times faster than real time."""
        script = make_day(f"day {day}", self.people, seed=self.rng.randrange(1 << 30))
        actions: list[tuple[float, int, str, int]] = []
        for n, visit in enumerate(script.visits):
            member = n % self.people
            actions.append((visit.arrive, 0, "enter", member))
            actions.append((visit.leave, 1, "leave", member))
        heapq.heapify(actions)
        start, first = time.monotonic(), 7 * 3600.0
        self.say(f"simulated day {day} begins: {len(script.visits)} visits")
        next_motion = 0.0
        while actions and not self._stop.is_set():
            if time.monotonic() >= next_motion:  # even while the door is busy (a fast day)
                self._move_about()
                next_motion = time.monotonic() + 2.0
            clock = first + (time.monotonic() - start) * self.speed
            if actions[0][0] <= clock:
                _, _, what, member = heapq.heappop(actions)
                self._enter(member) if what == "enter" else self._leave(member)
            else:
                self._stop.wait(0.1)
        self._stop.wait(max(0.0, (22 * 3600 - first) / self.speed - (time.monotonic() - start)))

    def _enter(self, member: int) -> None:
        if member in self.inside:
            return
        if self.card.present(simulated_card(self.cards[member]), hold=0.3, timeout=5) is None:
            return  # the reader did not see the card: they try again another day
        self.inside[member] = self.rng.choice(ROOMS) if self.rng.random() < 0.2 else ROOMS[0]
        self._breathe()
        self._stop.wait(3.0)  # through the door before the next one taps

    def _leave(self, member: int) -> None:
        if self.inside.pop(member, None) is None:
            return
        press_exit(self.cfg.door)
        self._breathe()
        self._stop.wait(3.0)

    def _move_about(self) -> None:
        """Each person triggers their room's PIR about every 4 simulated minutes."""
        for room in ROOMS:
            n = sum(1 for r in self.inside.values() if r == room)
            if n and self.rng.random() < 1 - math.exp(-n * 2.0 * self.speed / 240.0):
                log.debug("motion in %s (%d people)", room, n)
                pin = mock_pin(ROOM_PINS[room])
                pin.drive_high()
                self._stop.wait(0.3)
                pin.drive_low()
        self._breathe()

    def _breathe(self) -> None:
        if self.co2 is None:
            return
        target = OUTDOOR_PPM + PPM_PER_PERSON * len(self.inside)
        self.co2.ppm = int(self.co2.ppm + (target - self.co2.ppm) * 0.3)
