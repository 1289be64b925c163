"""The settings of a two-beam people counter at the door (``edge.drivers.door_counter``):
``[occupancy.counter]``.

Kept apart from the driver so that reading a config file does not import gpiozero.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from pydantic import Field, model_validator

from edge.drivers.pins import PinSpec
from hafen.config import Section


class BeamSettings(Section):
    """One infrared beam across the doorway: its receiver's output pin."""

    pin: PinSpec


class DoorCounterSettings(Section):
    """Two beams across the doorway, a hand's width apart: ``outer`` on the street side,
    ``inner`` on the room side. Someone who breaks the outer first and clears the inner last
    came in; the other way round, went out.

    Receivers with an open-collector output (the common kind) are pulled up and go low while
    their beam is broken (``pull_up = true``); a receiver that drives its output high while
    broken takes ``pull_up = false``."""

    outer: BeamSettings
    inner: BeamSettings
    pull_up: bool = True
    #: Glitches shorter than this are ignored (seconds).
    bounce_seconds: Annotated[float, Field(ge=0, le=0.5)] = 0.005

    @model_validator(mode="after")
    def _two_beams(self) -> DoorCounterSettings:
        if self.outer.pin == self.inner.pin:
            raise ValueError("the outer and inner beams need a pin each")
        return self

    def pin_users(self) -> Iterator[tuple[str, int]]:
        yield "counter.outer", self.outer.pin
        yield "counter.inner", self.inner.pin
