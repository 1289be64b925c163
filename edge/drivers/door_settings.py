"""The settings of the door's hardware (``edge.drivers.door``): one model per pin, and the door's.

Kept apart from the drivers so that reading a config file does not import gpiozero. Keys and
defaults are the ``[door]`` section's; the agent's config adds the door's behaviour to them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Literal, Self

from pydantic import Field, model_validator

from edge.drivers.pins import PinClash, PinRegistry, PinSpec
from hafen.config import Section

#: secure: the door stays locked when the agent stops; safe: it unlocks (fire exits).
FailMode = Literal["secure", "safe"]
#: A debounce time in seconds, or None for none.
BounceSeconds = Annotated[float, Field(ge=0, le=1)] | None


class OutputPin(Section):
    """A pin that drives something: relay, LED, buzzer."""

    pin: PinSpec
    active_high: bool = True


class InputPin(Section):
    """A pin that reads a switch: exit button, door contact."""

    pin: PinSpec
    pull_up: bool = True
    bounce_seconds: BounceSeconds = 0.02


class ContactPin(InputPin):
    """The reed contact on the door; ``closed_level`` is the pin level while the door is shut."""

    closed_level: Literal["low", "high"] = "low"


#: The door's parts that take a pin, in the order they claim them.
DOOR_PARTS = ("strike", "contact", "exit_button", "led", "buzzer")


class DoorHardwareSettings(Section):
    """The door's hardware: strike relay, contact, exit button, LED and buzzer."""

    #: secure: the door stays locked when the agent stops; safe: it unlocks (fire exits).
    fail_mode: FailMode = "secure"
    strike: OutputPin
    contact: ContactPin | None = None
    exit_button: InputPin | None = None
    led: OutputPin | None = None
    buzzer: OutputPin | None = None

    def pin_users(self) -> Iterator[tuple[str, int]]:
        """Each part that is wired, by its key, and its pin."""
        for key in DOOR_PARTS:
            part: OutputPin | InputPin | None = getattr(self, key)
            if part is not None:
                yield key, part.pin

    @model_validator(mode="after")
    def _one_part_per_pin(self) -> Self:
        """The door's own parts never share a pin, whoever builds these settings (the agent's
        config checks the door against the rooms besides)."""
        try:
            PinRegistry().claim_all("door", self)
        except PinClash as clash:
            raise ValueError(clash.seen_from("door")) from None
        return self
