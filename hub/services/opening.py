"""When a site is open: its weekly windows (``hafen.acl.TimeWindow``, in the site's own time)
less its closed days; no windows at all is always open. Finding a space asks whether a site
is open now and which halves of a day (``hub.services.desk_pool.Part``) it opens at all.
"""

from __future__ import annotations

from datetime import date, datetime

from hafen.acl import TimeWindow
from hub.services.desk_pool import MIDDAY, Part

_MIDDAY = MIDDAY.hour * 60 + MIDDAY.minute


def is_open(
    windows: tuple[TimeWindow, ...] | None, closed: frozenset[date], local: datetime
) -> bool:
    """Whether a site is open at a local moment (no hours: always, but on closed days)."""
    if local.date() in closed:
        return False
    if windows is None:
        return True
    second = local.hour * 3600 + local.minute * 60 + local.second
    return any(w.contains(local.weekday(), second) for w in windows)


def open_parts(windows: tuple[TimeWindow, ...] | None, weekday: int) -> set[Part]:
    """The halves of a weekday the hours open (at all): morning, afternoon."""
    if windows is None:
        return {Part.MORNING, Part.AFTERNOON}
    spans = []
    for w in windows:
        start, end = _clock(w.start), _clock(w.end)
        if start < end:
            if weekday in w.days:
                spans.append((start, end))
            continue
        if weekday in w.days:  # runs past midnight: this evening, and the next morning
            spans.append((start, 24 * 60))
        if (weekday - 1) % 7 in w.days:
            spans.append((0, end))
    parts = set()
    if any(start < _MIDDAY for start, _ in spans):
        parts.add(Part.MORNING)
    if any(end > _MIDDAY for _, end in spans):
        parts.add(Part.AFTERNOON)
    return parts


def _clock(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)
