"""The one spelling of an id: sites, devices, members, plans, rooms and sensors.

An id is also an MQTT topic level and a file name on the door, so it is lower-case ASCII,
starts with a letter or digit and holds at most 63 characters of letters, digits, ``_`` and
``-``: no ``/``, ``+`` or ``#`` that would change a topic's meaning.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field

SLUG_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
_SLUG = re.compile(SLUG_PATTERN)

#: A validated id, for pydantic models and FastAPI parameters.
Slug = Annotated[str, Field(pattern=SLUG_PATTERN)]


def is_slug(value: str) -> bool:
    """Whether ``value`` is a well-formed id."""
    return _SLUG.fullmatch(value) is not None
