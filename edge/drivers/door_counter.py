"""A two-beam people counter at the door, on gpiozero: who came in and who went out.

Two infrared beams cross the doorway a hand's width apart. A person passing breaks them one
after the other and clears them in the same order, so a passage is read from the beams alone:
it starts when the first beam is broken while both were clear, and ends when both are clear
again; the beam broken first and the beam cleared last tell the direction:

| first broken | last cleared | passage |
|---|---|---|
| outer | inner | ``in`` |
| inner | outer | ``out`` |
| outer | outer | none: someone leaned in and turned back |
| inner | inner | none: someone came to the door and went back in |
| one beam only | | none: a hand, a bag, a glitch |

What the beams cannot tell apart is said plainly: two people walking through so close that
the beams never clear between them count as one passage, and a door left propped with
something across a beam counts nothing until it is cleared. The estimator weighs the counter
accordingly; it is a strong signal, not the truth.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Literal

from gpiozero import DigitalInputDevice

from edge.drivers.door_counter_settings import DoorCounterSettings

Direction = Literal["in", "out"]
OUTER, INNER = "outer", "inner"


class PassageReader:
    """The passage rule above, fed with beam changes; hardware-free (tests and simulation)."""

    def __init__(self, on_pass: Callable[[Direction], None]) -> None:
        self._on_pass = on_pass
        self._broken: set[str] = set()
        self._first: str | None = None
        self._both = False  # both beams were broken at some moment of this passage
        self._lock = threading.Lock()

    def broken(self, beam: str) -> None:
        with self._lock:
            if not self._broken:
                self._first, self._both = beam, False
            self._broken.add(beam)
            if len(self._broken) == 2:
                self._both = True

    def cleared(self, beam: str) -> None:
        with self._lock:
            if beam not in self._broken:
                return  # a clear without its break (the counter started mid-passage)
            self._broken.discard(beam)
            if self._broken or self._first is None:
                return
            first, last, both = self._first, beam, self._both
            self._first = None
        if not both or first == last:
            return
        self._on_pass("in" if first == OUTER else "out")


class DoorCounter:
    """The two beams on their pins; calls ``on_pass("in" | "out")`` for each passage."""

    def __init__(self, settings: DoorCounterSettings, on_pass: Callable[[Direction], None]):
        self.reader = PassageReader(on_pass)
        self._beams: dict[str, DigitalInputDevice] = {}
        try:
            for name, beam in ((OUTER, settings.outer), (INNER, settings.inner)):
                # Active (broken) when low with a pull-up, when high without one.
                device = DigitalInputDevice(
                    beam.pin, pull_up=settings.pull_up, bounce_time=settings.bounce_seconds or None
                )
                device.when_activated = _calling(self.reader.broken, name)
                device.when_deactivated = _calling(self.reader.cleared, name)
                self._beams[name] = device
        except Exception:
            self.close()
            raise

    def blocked(self) -> list[str]:
        """The beams broken right now (``outer``, ``inner``): held broken for long, one is
        blocked or out of line, and the counter counts nothing."""
        return [name for name, beam in self._beams.items() if beam.is_active]

    def close(self) -> None:
        for beam in self._beams.values():
            beam.close()
        self._beams.clear()


def _calling(handler: Callable[[str], None], beam: str) -> Callable[[], None]:
    # No parameters: gpiozero passes the device to a callback that can take one argument.
    return lambda: handler(beam)
