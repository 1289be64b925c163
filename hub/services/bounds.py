"""What the hub takes in at the edges of its ranges: instants, days, text and numbers that the
services can compute with and both stores can hold.

Every time a caller gives is an instant: converted to UTC here, before any query, because
SQLite compares the stored (UTC) wall-clock text, so ``10:00+02:00`` must reach it as
``08:00``. Times and days keep a week away from the ends of Python's calendar: a site's zone
(up to 14 hours away) and the services' day and week arithmetic never run off it, so year
9999 with an offset is an invalid input (422), not an overflow (500).

Text must be something PostgreSQL stores (no NUL, no unpaired surrogate, which no encoding
holds), and a JSON number a finite float or a 64-bit integer; ``hub.http.inputs`` applies
those two rules to every request before a route sees it.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, timedelta
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime

#: How far from the ends of Python's calendar an input time or day must stay.
MARGIN = timedelta(days=7)
EARLIEST = datetime.min.replace(tzinfo=UTC) + MARGIN
LATEST = datetime.max.replace(tzinfo=UTC) - MARGIN
#: The range of a 64-bit signed integer: the widest either store keeps.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
#: The first and last day accepted, as the errors name them (strftime would drop year 1's zeros).
_FIRST, _LAST = EARLIEST.date().isoformat(), LATEST.date().isoformat()

#: Characters no text the hub stores may hold: NUL (PostgreSQL refuses it in text and JSON)
#: and unpaired surrogates (no UTF-8 can carry them; the drivers fail to encode them).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _instant(value: datetime) -> datetime:
    if value.tzinfo is None:  # no offset given: UTC, the same on both stores
        value = value.replace(tzinfo=UTC)
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        raise ValueError(_out_of_range()) from None
    if not EARLIEST <= utc <= LATEST:
        raise ValueError(_out_of_range())
    return utc


def _out_of_range() -> str:
    return f"out of range: give a time between {_FIRST} and {_LAST} UTC"


def _day(value: date) -> date:
    if not EARLIEST.date() <= value <= LATEST.date():
        raise ValueError(f"out of range: give a day between {_FIRST} and {_LAST}")
    return value


#: A time a caller gives, in UTC: without an offset it is read as UTC.
Instant = Annotated[datetime, AfterValidator(_instant)]
#: A time a caller must give with its offset, in UTC.
AwareInstant = Annotated[AwareDatetime, AfterValidator(_instant)]
#: A calendar day a caller gives.
Day = Annotated[date, AfterValidator(_day)]


def unstorable_text(text: str) -> str | None:
    """Why ``text`` cannot be stored, or None if it can."""
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    if found.group() == "\x00":
        return "holds a NUL character, which the hub does not store"
    return "holds an unpaired surrogate, which is not text"


def unstorable_number(number: float) -> str | None:
    """Why a number (of a JSON body) cannot be taken, or None if it can."""
    if isinstance(number, bool):
        return None
    if isinstance(number, int):
        if INT64_MIN <= number <= INT64_MAX:
            return None
        return "is beyond a 64-bit integer"
    if math.isfinite(number):
        return None
    return "is not a finite number"
