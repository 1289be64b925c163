"""GPIO pins by their BCM number.

A pin can be written ``17``, ``"17"``, ``"GPIO17"`` or ``"BCM17"``: one numbering (gpiozero's,
and the Raspberry Pi pinout charts'), so the same pin under two spellings is still one pin.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator, Field

#: The highest BCM number on the 40-pin header.
MAX_BCM = 27


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
