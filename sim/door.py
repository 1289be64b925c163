"""The physical world around a simulated door: mock pins, a wire logger, a person walking through.

A simulated door agent runs on gpiozero's mock pins and nfcpy's UDP reader; this module supplies
what hardware would: a door that is shut at start, someone who pushes it open when the strike
releases, and optionally a log of every pin change (a logic analyser on the wires) that survives
the agent being killed.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from gpiozero import Device
from gpiozero.pins.mock import MockFactory, MockPin

from edge.drivers.door_settings import DoorHardwareSettings

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
        return bool(changed)


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
    return Device.pin_factory.pin(cfg_pin)


def shut_door(door: DoorHardwareSettings) -> None:
    """Put the simulated door leaf in its frame before the agent starts watching it."""
    if door.contact:
        pin = mock_pin(door.contact.pin)
        pin.drive_low() if door.contact.closed_level == "low" else pin.drive_high()


def open_door(door: DoorHardwareSettings, is_open: bool) -> None:
    """Move the simulated door leaf (needs a configured contact)."""
    assert door.contact is not None
    pin = mock_pin(door.contact.pin)
    closed_low = door.contact.closed_level == "low"
    if is_open == closed_low:
        pin.drive_high()
    else:
        pin.drive_low()


def press_exit(door: DoorHardwareSettings) -> None:
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
        door: DoorHardwareSettings,
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


class WorldPart(Protocol):
    """A part of the simulated world: a doorway, a space full of people."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


class World:
    """The simulated physical world's parts, started in order and stopped in reverse."""

    def __init__(self, parts: list[WorldPart]) -> None:
        self.parts = parts

    def start(self) -> None:
        for part in self.parts:
            part.start()

    def stop(self) -> None:
        for part in reversed(self.parts):
            part.stop()


def _unlocked(door: DoorHardwareSettings, level: bool) -> bool:
    energised = level == door.strike.active_high
    return energised == (door.fail_mode == "secure")


def _open(door: DoorHardwareSettings, level: bool) -> bool:
    assert door.contact is not None
    return level != (door.contact.closed_level == "high")
