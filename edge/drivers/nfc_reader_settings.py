"""The settings of the NFC reader (``edge.drivers.nfc_reader``): the ``[reader]`` section.

Kept apart from the driver so that reading a config file does not import nfcpy.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from hafen.config import Section

#: The kinds of card nfcpy polls for: ISO 14443 Type A and B at 106 kbit/s, FeliCa at 212/424.
Target = Literal["106A", "106B", "212F", "424F"]
DEFAULT_TARGETS: tuple[Target, ...] = ("106A", "106B", "212F")


def _default_targets() -> list[Target]:
    return list(DEFAULT_TARGETS)


class NfcReaderSettings(Section):
    """The NFC reader, by nfcpy device path: "usb", "tty:AMA0:pn532", "udp:127.0.0.1:54321"."""

    path: str = "usb"
    targets: list[Target] = Field(default_factory=_default_targets, min_length=1)
    poll_interval: Annotated[float, Field(ge=0.0, le=5.0)] = 0.05
    #: Empty polls in a row after which a card counts as taken away.
    removal_polls: Annotated[int, Field(ge=1, le=20)] = 2
    reconnect_max_seconds: Annotated[float, Field(gt=0, le=3600)] = 30.0
