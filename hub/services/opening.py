"""When a site is open: its weekly windows (``hafen.acl.TimeWindow``, in the site's own time)
less its closed days; no windows at all is always open.

``WeeklyHours`` turns the windows into spans of seconds per weekday once, when the sites are
read: finding a space asks each of 500 sites whether it is open now, which halves of a day
(``hub.services.desk_pool.Part``) it opens, and at which hours, on every request. The spans
mean what ``TimeWindow.contains`` means: a window whose end is before its start runs past
midnight, its evening on the listed day and its morning on the next.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from hafen.acl import TimeWindow
from hub.services.desk_pool import MIDDAY, Part

DAY_SECONDS = 24 * 3600
_MIDDAY = MIDDAY.hour * 3600 + MIDDAY.minute * 60
#: A weekday's open spans: (from, until) in seconds since local midnight, until excluded.
Spans = tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class WeeklyHours:
    """A site's opening hours as spans per weekday (Monday first) and its closed days."""

    spans: tuple[Spans, ...]
    closed: frozenset[date] = frozenset()

    @classmethod
    def of(
        cls, windows: Sequence[TimeWindow] | None, closed: Sequence[date] | None = None
    ) -> WeeklyHours:
        """The hours of ``windows`` (None: always open) less the ``closed`` days."""
        if windows is None:
            always: Spans = ((0, DAY_SECONDS),)
            return cls((always,) * 7, frozenset(closed or ()))
        days: list[list[tuple[int, int]]] = [[] for _ in range(7)]
        for window in windows:
            start, end = _seconds(window.start), _seconds(window.end)
            for weekday in window.days:
                if start < end:
                    days[weekday].append((start, end))
                else:  # past midnight: this evening, and the next morning
                    days[weekday].append((start, DAY_SECONDS))
                    days[(weekday + 1) % 7].append((0, end))
        return cls(tuple(tuple(sorted(spans)) for spans in days), frozenset(closed or ()))

    def open_at(self, local: datetime) -> bool:
        """Whether the site is open at a moment of its local time."""
        if local.date() in self.closed:
            return False
        second = local.hour * 3600 + local.minute * 60 + local.second
        return any(start <= second < end for start, end in self.spans[local.weekday()])

    def parts(self, day: date) -> set[Part]:
        """The halves of ``day`` it opens at all (none on a closed day)."""
        return set() if day in self.closed else self.weekday_parts(day.weekday())

    def weekday_parts(self, weekday: int) -> set[Part]:
        """The halves of ``weekday`` it opens at all, closed days aside."""
        spans = self.spans[weekday]
        parts = set()
        if any(start < _MIDDAY for start, _ in spans):
            parts.add(Part.MORNING)
        if any(end > _MIDDAY for _, end in spans):
            parts.add(Part.AFTERNOON)
        return parts

    def hours(self, weekday: int) -> list[int]:
        """The hours of ``weekday`` it is open at their half past (closed days aside)."""
        found: set[int] = set()
        for start, end in self.spans[weekday]:
            first = max(-(-(start - 1800) // 3600), 0)  # the first h with h:30 >= start
            last = min((end - 1801) // 3600, 23)  # the last h with h:30 < end
            found.update(range(first, last + 1))
        return sorted(found)


def _seconds(clock: str) -> int:
    """Seconds since midnight of ``HH:MM`` (``TimeWindow`` checked the form)."""
    hours, minutes = clock.split(":")
    return int(hours) * 3600 + int(minutes) * 60
