"""The settings of a CO2 sensor (``edge.drivers.co2``): one ``[[occupancy.co2]]`` entry.

Kept apart from the driver so that reading a config file does not import pyserial.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from hafen.config import Section
from hafen.ids import Slug


class Co2Settings(Section):
    """A CO2 sensor on a serial port, read every ``every_seconds``."""

    name: Slug = "co2"
    port: str
    model: Literal["mhz19b", "s8"]
    every_seconds: Annotated[float, Field(ge=5, le=3600)] = 30.0
