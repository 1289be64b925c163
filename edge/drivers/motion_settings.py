"""The settings of a room's PIR (``edge.drivers.motion``): one ``[[occupancy.rooms]]`` entry.

Kept apart from the driver so that reading a config file does not import gpiozero.
"""

from __future__ import annotations

from edge.drivers.pins import PinSpec
from hafen.config import Section
from hafen.ids import Slug


class RoomSettings(Section):
    """A room with a PIR motion sensor (HC-SR501 and kin drive their pin high on motion)."""

    name: Slug
    pin: PinSpec
    pull_up: bool = False
