"""Charts as pictures: SVG drawn on the hub by Matplotlib, so no chart script comes from a CDN.

A site's day curve changes once a minute and its week heatmap once an hour, so each picture
is cached for that long: a page full of phones costs one drawing.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:  # Matplotlib loads on first use (the server loads it at start)
    from matplotlib.figure import Figure

GREEN = "#2f7d5b"
T = TypeVar("T")


class ChartCache:
    """SVG bytes per key for ``ttl`` seconds.

    One caller per key fetches and draws while the others for that key wait for its picture.
    Fetching (a store query) runs in parallel across keys; drawing is serialised, as
    Matplotlib's text and font caches are not made for threads.
    """

    def __init__(self, size: int = 2_000) -> None:
        self.size = size
        self._entries: dict[tuple, tuple[float, bytes]] = {}
        self._flights: dict[tuple, threading.Lock] = {}
        self._lock = threading.Lock()  # guards the two dicts
        self._drawing = threading.Lock()

    def get(
        self, key: tuple, ttl: float, fetch: Callable[[], T], render: Callable[[T], bytes]
    ) -> bytes:
        """The cached picture for ``key``, or ``render(fetch())`` kept for ``ttl`` seconds."""
        if (svg := self._fresh(key)) is not None:
            return svg
        with self._lock:
            flight = self._flights.setdefault(key, threading.Lock())
        with flight:
            if (svg := self._fresh(key)) is not None:
                return svg
            try:
                data = fetch()
            except Exception:  # e.g. no such site: nothing to keep, not even the flight
                with self._lock:
                    self._flights.pop(key, None)
                raise
            with self._drawing:
                svg = render(data)
            with self._lock:
                if len(self._entries) >= self.size:
                    self._entries.clear()
                    self._flights = {key: flight}
                self._entries[key] = (time.monotonic() + ttl, svg)
            return svg

    def _fresh(self, key: tuple) -> bytes | None:
        hit = self._entries.get(key)
        return hit[1] if hit is not None and hit[0] > time.monotonic() else None


def _figure(width: float, height: float) -> Figure:
    import matplotlib

    matplotlib.use("Agg")  # no display on a hub
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    fig.patch.set_alpha(0)
    return fig


def prepare() -> None:
    """Load Matplotlib and build its font cache by drawing one small chart."""
    _svg(_figure(1, 1))


def _svg(fig: Figure) -> bytes:
    out = io.BytesIO()
    fig.savefig(out, format="svg", metadata={"Date": None})
    return out.getvalue()


def day_curve(
    times: list[datetime], counts: list[float | None], capacity: int | None, title: str
) -> bytes:
    """Headcount through the day (a gap where sensors were silent), with the capacity line."""
    from matplotlib.dates import DateFormatter

    fig = _figure(10, 3)
    ax = fig.add_subplot()
    ys = [float("nan") if c is None else c for c in counts]
    # Matplotlib takes datetimes through its unit converters (a date axis with date ticks);
    # its type stubs know only numbers.
    xs: Any = times
    ax.fill_between(xs, ys, step="post", color=GREEN, alpha=0.25, linewidth=0)
    ax.step(xs, ys, where="post", color=GREEN, linewidth=1.4)
    if capacity:
        ax.axhline(capacity, color="#b3261e", linewidth=0.8, linestyle="--", label="capacity")
        ax.legend(loc="upper left", frameon=False, fontsize=8)
    if times:
        ax.set_xlim(xs[0], xs[-1])
        ax.xaxis.set_major_formatter(DateFormatter("%H:%M", tz=times[0].tzinfo))
    ax.set_ylim(bottom=0, top=max([*(y for y in counts if y is not None), capacity or 0, 4]) * 1.1)
    ax.set_ylabel("people")
    ax.set_title(title, fontsize=10, loc="left")
    ax.grid(axis="y", alpha=0.3)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return _svg(fig)


DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def week_heatmap(cells: list[list[float | None]], title: str) -> bytes:
    """Mean headcount per weekday (rows) and local hour (columns); blank where unknown."""
    fig = _figure(10, 3.2)
    ax = fig.add_subplot()
    data = [[float("nan") if v is None else v for v in row] for row in cells]
    image = ax.imshow(data, aspect="auto", cmap="Greens", vmin=0, interpolation="nearest")
    ax.set_yticks(range(7), DAYS, fontsize=8)
    ax.set_xticks(range(0, 24, 3), [f"{h:02d}" for h in range(0, 24, 3)], fontsize=8)
    ax.set_xlabel("hour of day")
    ax.set_title(title, fontsize=10, loc="left")
    fig.colorbar(image, ax=ax, label="people (mean)", shrink=0.9)
    return _svg(fig)
