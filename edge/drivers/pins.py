"""GPIO pins by their BCM number, and the registry that gives each pin to one user.

A pin can be written ``17``, ``"17"``, ``"GPIO17"`` or ``"BCM17"``: one numbering (gpiozero's,
and the Raspberry Pi pinout charts'), so the same pin under two spellings is still one pin.
Whatever takes pins (the door's parts, the rooms' PIRs) claims them in one ``PinRegistry``,
which refuses a second user of a pin and names both.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Annotated, Protocol

from pydantic import BeforeValidator, Field

#: The highest BCM number on the 40-pin header.
MAX_BCM = 27


def bcm_number(pin: int | str) -> int:
    """The BCM number of ``17``, ``"17"``, ``"GPIO17"`` or ``"BCM17"``; ValueError otherwise."""
    value = _bcm_number(pin)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_BCM:
        raise ValueError(f"a pin is a BCM GPIO number from 0 to {MAX_BCM}, not {pin!r}")
    return value


def _bcm_number(value: object) -> object:
    """Accept 17, "17", "GPIO17" or "BCM17"; one numbering, so a pin is never used twice."""
    if isinstance(value, str):
        match = re.fullmatch(r"(?:GPIO|BCM)?(\d{1,2})", value.strip(), flags=re.IGNORECASE)
        if not match:
            raise ValueError("a pin is a BCM GPIO number such as 17 or 'GPIO17'")
        return int(match.group(1))
    return value


#: A GPIO pin by its BCM number, the numbering of gpiozero and of Raspberry Pi pinout charts.
PinSpec = Annotated[int, BeforeValidator(_bcm_number), Field(ge=0, le=MAX_BCM)]


class PinUsers(Protocol):
    """Settings whose parts take GPIO pins: each part by its key, and its pin."""

    def pin_users(self) -> Iterable[tuple[str, int]]: ...


class PinClash(ValueError):
    """A pin claimed by a second user; the message names the pin and both users."""

    def __init__(self, pin: int, user: str, holder: str) -> None:
        self.pin, self.user, self.holder = pin, user, holder
        super().__init__(f"{user}.pin {pin} is already used by {holder}")

    def seen_from(self, section: str) -> str:
        """The message with both users named from inside ``section`` (``led``, not ``door.led``)."""

        def name(user: str) -> str:
            return user.removeprefix(f"{section}.")

        return f"{name(self.user)}.pin {self.pin} is already used by {name(self.holder)}"


class PinRegistry:
    """Which user holds which GPIO pin: the first to claim a pin keeps it."""

    def __init__(self) -> None:
        self._holders: dict[int, str] = {}

    def claim(self, pin: int | str, user: str) -> int:
        """Give ``pin`` to ``user`` and return its BCM number; PinClash if it is taken."""
        number = bcm_number(pin)
        holder = self._holders.get(number)
        if holder is not None:
            raise PinClash(number, user, holder)
        self._holders[number] = user
        return number

    def claim_all(self, section: str, users: PinUsers) -> None:
        """Claim every pin of a section's parts, each under ``section.key``."""
        for key, pin in users.pin_users():
            self.claim(pin, f"{section}.{key}")
