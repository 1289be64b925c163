"""The rooms' PIRs on gpiozero's mock pins: both edges of each line reported by room, the
lines as they stand, and the pins given back.

gpiozero samples a PIR's line every 0.1 s; its first sample sets the state without an edge
(a line already high at start is read, not reported). Each test therefore reads the lines
once, which waits for that first sample, before it moves anything."""

from __future__ import annotations

import threading

import pytest
from gpiozero.exc import GPIOPinInUse

from edge.drivers.motion import Pir, RoomMotion
from edge.drivers.motion_settings import RoomSettings
from tests.support.waiting import wait_for

ROOMS = [RoomSettings(name="coworking", pin=5), RoomSettings(name="meeting", pin=6)]


class Edges:
    """What the PIRs reported, from gpiozero's sampling thread."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, bool]] = []
        self._lock = threading.Lock()

    def __call__(self, room: str, raised: bool) -> None:
        with self._lock:
            self.seen.append((room, raised))

    def __eq__(self, other: object) -> bool:
        with self._lock:
            return self.seen == other


def test_each_room_reports_its_line_rising_and_falling(mock_pins):
    edges = Edges()
    motion = RoomMotion.from_settings(ROOMS, edges)
    try:
        assert motion.moving() == {"coworking": False, "meeting": False}
        mock_pins.pin(5).drive_high()  # someone walks into the coworking room
        assert wait_for(lambda: edges == [("coworking", True)], 2)
        assert motion.moving() == {"coworking": True, "meeting": False}
        mock_pins.pin(6).drive_high()
        assert wait_for(lambda: edges.seen[-1] == ("meeting", True), 2)
        mock_pins.pin(5).drive_low()  # the coworking room's module let its hold run out
        expected = [("coworking", True), ("meeting", True), ("coworking", False)]
        assert wait_for(lambda: edges == expected, 2)
        assert motion.moving() == {"coworking": False, "meeting": True}
    finally:
        motion.close()


def test_a_line_held_high_reports_one_rise_and_no_fall(mock_pins):
    """A busy room keeps its module retriggered: the line stays up, and the agent hears one
    rise until it falls (queue_len=1 reads each sample as it comes, with no averaging)."""
    edges = Edges()
    pir = Pir(5, lambda: edges("coworking", True), lambda: edges("coworking", False))
    try:
        assert not pir.motion_detected
        mock_pins.pin(5).drive_high()
        assert wait_for(lambda: edges == [("coworking", True)], 2)
        assert not wait_for(lambda: len(edges.seen) > 1, 0.5)
        assert pir.motion_detected
    finally:
        pir.close()


def test_a_pir_needs_no_fall_handler(mock_pins):
    """The self-test reads a line and wants no callbacks for its fall."""
    rises: list[bool] = []
    pir = Pir(5, lambda: rises.append(True))
    try:
        assert not pir.motion_detected
        mock_pins.pin(5).drive_high()
        assert wait_for(lambda: rises == [True], 2)
        mock_pins.pin(5).drive_low()
        assert wait_for(lambda: not pir.motion_detected, 2)
        assert rises == [True]
    finally:
        pir.close()


def test_the_pins_taken_are_given_back_when_one_cannot_be_had(mock_pins):
    blocker = Pir(6, lambda: None)  # the meeting room's pin, already in use
    try:
        with pytest.raises(GPIOPinInUse):
            RoomMotion.from_settings(ROOMS, Edges())
        Pir(5, lambda: None).close()  # the coworking room's pin was released
    finally:
        blocker.close()
