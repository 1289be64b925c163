"""The two-beam door counter on gpiozero's mock pins: passages in and out, and what is not one
(turning back, a hand in one beam, a clear without its break), a beam held broken, and its
settings. The agent's use of it is in tests/test_occupancy_agent.py."""

from __future__ import annotations

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory

from edge.drivers.door_counter import DoorCounter, PassageReader
from edge.drivers.door_counter_settings import DoorCounterSettings
from edge.selftest.sensors import check_counter
from hafen.config import ConfigError, validate_config

OUTER, INNER = 5, 6


@pytest.fixture
def counter():
    Device.pin_factory = MockFactory()
    passes: list[str] = []
    settings = DoorCounterSettings.model_validate(
        {"outer": {"pin": OUTER}, "inner": {"pin": INNER}, "bounce_seconds": 0}
    )
    door = DoorCounter(settings, passes.append)
    outer, inner = (Device.pin_factory.pin(n) for n in (OUTER, INNER))
    outer.drive_high()  # pulled up: both beams seen
    inner.drive_high()
    yield passes, outer, inner, door
    door.close()


def _walk(*steps) -> None:
    """Each step a pin and what happens to its beam: a receiver pulled up reads low when
    broken."""
    for pin, broken in steps:
        if broken:
            pin.drive_low()
        else:
            pin.drive_high()


def test_passages_in_and_out(counter):
    passes, outer, inner, _ = counter
    _walk((outer, True), (inner, True), (outer, False), (inner, False))
    _walk((inner, True), (outer, True), (inner, False), (outer, False))
    assert passes == ["in", "out"]


def test_turning_back_a_hand_and_a_glitch_count_nothing(counter):
    passes, outer, inner, _ = counter
    _walk((outer, True), (inner, True), (inner, False), (outer, False))  # leaned in, went back
    _walk((inner, True), (inner, False))  # a hand in the inner beam
    _walk((outer, True), (outer, False))
    assert passes == []
    _walk((outer, True), (inner, True), (outer, False), (inner, False))
    assert passes == ["in"]


def test_a_clear_without_its_break_is_ignored():
    passes: list[str] = []
    reader = PassageReader(passes.append)
    reader.cleared("inner")  # started mid-passage
    reader.broken("outer")
    reader.broken("inner")
    reader.cleared("outer")
    reader.cleared("inner")
    assert passes == ["in"]


def test_its_settings_name_their_pins_and_need_two():
    settings = DoorCounterSettings.model_validate({"outer": {"pin": 5}, "inner": {"pin": "GPIO6"}})
    assert dict(settings.pin_users()) == {"counter.outer": 5, "counter.inner": 6}
    with pytest.raises(ConfigError, match="need a pin each"):
        validate_config({"outer": {"pin": 5}, "inner": {"pin": "GPIO5"}}, DoorCounterSettings)


def test_a_beam_held_broken_is_told_and_counts_nothing(counter):
    passes, outer, inner, door = counter
    assert door.blocked() == []
    outer.drive_low()  # a doorstop in the outer beam
    assert door.blocked() == ["outer"]
    _walk((inner, True), (inner, False))  # someone walks through: the inner beam alone
    assert passes == [] and door.blocked() == ["outer"]
    inner.drive_low()
    assert door.blocked() == ["outer", "inner"]
    _walk((inner, False), (outer, False))  # the doorstop taken away: still nobody passed
    assert door.blocked() == [] and passes == []


def test_the_self_test_wants_both_beams_clear(counter):
    """A technician runs it with nobody in the doorway: a beam broken then is out of line."""
    _, outer, inner, door = counter
    assert (check_counter(door).failed, check_counter(door).detail) == (False, "both beams clear")
    inner.drive_low()
    result = check_counter(door)
    assert result.failed and result.detail.startswith("the inner beam is broken:")
    outer.drive_low()
    assert check_counter(door).detail.startswith("both beams are broken:")
