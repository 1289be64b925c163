"""Occupancy at a door's site: the estimator fed from the door, PIRs and CO2 sensors, and its
samples recorded through the outbox (nothing lost offline) and shown live (retained).

The estimator is used only from the agent's loop thread: PIR callbacks and CO2 readings come
from driver threads as queued items, like every other input of the agent.

Both edges of each PIR line reach the estimator as they happen. The lines are also read on
each tick, for an edge that was never heard (a line already high at start, a callback lost):
a line that has disagreed with the edges heard for ``MISSED_EDGE_AFTER`` is given to the
estimator as it stands. The wait keeps a read from overtaking an edge still in the queue,
which would turn a rise after a quiet spell into a line already high.

When the agent starts, nobody knows who is inside (it may restart mid-day, after an update
or a power cut): the count starts *unknown* (``START_EMPTY``: even odds of empty while open,
empty but for the odd late stayer while closed), never surely empty, so that the PIRs and
the air can still find the people the door did not see come in.

A people counter at the door (optional) sends its passages the same way. A beam held broken
for ``BEAM_BLOCKED_AFTER`` (a doorstop in it, a beam knocked out of line) blinds the counter:
that is one ``device.fault`` (component ``counter``), and until the beam is clear again the
estimator reads the door's taps and presses as it would without a counter.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from edge.agent.occupancy import OccupancyEstimator, OccupancySettings
from edge.agent.occupancy_config import OccupancyConfig
from edge.drivers.co2_settings import Co2Settings
from hafen.protocol import DeviceFault, EventPayload, OccupancySample

if TYPE_CHECKING:  # gpiozero loads only for a site with rooms or a counter
    from edge.drivers.door_counter import DoorCounter
    from edge.drivers.motion import RoomMotion

log = logging.getLogger(__name__)
#: A PIR line read otherwise than its last edge said, this long (seconds): the edge was missed.
MISSED_EDGE_AFTER = 2.0
#: The chance that the space is empty when the agent starts, by whether it is open then.
START_EMPTY = {True: 0.5, False: 0.97}
#: A counter's beam broken this long is blocked: longer than anyone stands in a doorway.
BEAM_BLOCKED_AFTER = timedelta(minutes=5)


@dataclass(frozen=True)
class Motion:
    """A room's PIR line rose (``raised``) or fell."""

    room: str
    raised: bool = True


@dataclass(frozen=True)
class Passage:
    """The door counter saw someone go ``in`` or ``out``."""

    direction: str


@dataclass(frozen=True)
class Co2Reading:
    sensor: str
    ppm: int | None
    fault: str | None


def settings_for(cfg: OccupancyConfig, tz: ZoneInfo) -> OccupancySettings:
    """How the estimator reads this site, from its ``[occupancy]`` config and time zone."""
    return OccupancySettings(
        capacity=cfg.capacity,
        rooms=tuple(r.name for r in cfg.rooms),
        air=cfg.air(),
        litres_per_person_minute=cfg.litres_per_person_minute,
        pir_hold_seconds=cfg.pir_hold_seconds,
        counter=cfg.counter is not None,
        opening_hours=tuple(cfg.opening_hours),
        timezone=tz,
    )


class Co2Poller:
    """Reads one CO2 sensor every ``every_seconds`` on its own thread; a fault is reported as
    a reading of None with the fault's kind, and the port is opened again on the next try."""

    def __init__(self, cfg: Co2Settings, report: Callable[[Co2Reading], None]) -> None:
        from edge.drivers.co2 import Co2Sensor

        self.cfg = cfg
        self._sensor = Co2Sensor.from_settings(cfg)
        self._report = report
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"co2-{cfg.name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        from edge.drivers.co2 import Co2Fault

        while not self._stop.is_set():
            try:
                reading = Co2Reading(self.cfg.name, self._sensor.read(), None)
            except Co2Fault as fault:
                reading = Co2Reading(self.cfg.name, None, fault.kind)
            except Exception:  # whatever else: a fault too, never the last value kept
                log.exception("CO2 sensor %s failed", self.cfg.name)
                self._sensor.close()
                reading = Co2Reading(self.cfg.name, None, "error")
            self._report(reading)
            self._stop.wait(self.cfg.every_seconds)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        self._sensor.close()


class OccupancyService:
    """Turns the site's sensor inputs into occupancy samples."""

    def __init__(
        self,
        cfg: OccupancyConfig,
        tz: ZoneInfo,
        queue_input: Callable[[object], None],
        record: Callable[[EventPayload], None],
        publish_live: Callable[[OccupancySample], None] | None = None,
        started: datetime | None = None,
    ) -> None:
        """``started``: when the agent started, for the count's start (see the module doc);
        without it the count starts surely empty, as a replay of a day from before opening."""
        self.cfg = cfg
        self.estimator = OccupancyEstimator(settings_for(cfg, tz))
        if started is not None:
            self.estimator.start_unknown(START_EMPTY[self.estimator.open_at(started)])
        self._queue = queue_input
        self._record = record
        self._publish_live = publish_live
        self.co2: dict[str, int | None] = {c.name: None for c in cfg.co2}
        self._co2_rooms = {c.name: c.room for c in cfg.co2 if c.room is not None}
        self._co2_faults: dict[str, str | None] = {c.name: None for c in cfg.co2}
        self.faults_counted: dict[str, int] = {c.name: 0 for c in cfg.co2}
        self._pollers = [Co2Poller(c, queue_input) for c in cfg.co2]
        self._motion: RoomMotion | None = None
        self._counter: DoorCounter | None = None
        self._blocked_since: datetime | None = None
        self._counter_fault: str | None = None
        #: Each PIR line as the estimator last heard it, and since when (monotonic) a read of
        #: the line has said otherwise.
        self._lines: dict[str, bool] = {}
        self._line_differs: dict[str, float] = {}
        self._last: OccupancySample | None = None
        self._last_at: datetime | None = None

    def start(self) -> None:
        for note in self.cfg.notes():
            log.warning("config: %s", note)
        try:
            if self.cfg.rooms:
                from edge.drivers.motion import RoomMotion

                self._motion = RoomMotion.from_settings(
                    self.cfg.rooms, lambda room, raised: self._queue(Motion(room, raised))
                )
            if self.cfg.counter is not None:
                from edge.drivers.door_counter import DoorCounter

                self._counter = DoorCounter(self.cfg.counter, lambda way: self._queue(Passage(way)))
        except Exception:  # a pin that cannot be had: give back the ones taken
            self.stop()
            raise
        for poller in self._pollers:
            poller.start()

    def stop(self) -> None:
        for poller in self._pollers:
            poller.stop()
        if self._motion is not None:
            self._motion.close()
        if self._counter is not None:
            self._counter.close()

    # -- inputs, on the loop thread --------------------------------------------------------------
    def door(self, name: str, at: datetime) -> None:
        """The door's contact or exit button: "opened", "closed" or "exit"."""
        {
            "opened": self.estimator.door_opened,
            "closed": self.estimator.door_closed,
            "exit": self.estimator.exit_pressed,
        }[name](at)

    def tap_allowed(self, at: datetime) -> None:
        self.estimator.tap_allowed(at)

    def handle(self, item: object, at: datetime) -> bool:
        """Take a queued Motion, Passage or Co2Reading; False for anything else."""
        if isinstance(item, Motion):
            if item.raised:
                self.estimator.motion(item.room, at)
            else:
                self.estimator.motion_ended(item.room, at)
            self._lines[item.room] = item.raised
            self._line_differs.pop(item.room, None)
        elif isinstance(item, Passage):
            self.estimator.passage(item.direction, at)
        elif isinstance(item, Co2Reading):
            self._co2(item, at)
        else:
            return False
        return True

    def _co2(self, reading: Co2Reading, at: datetime) -> None:
        self.co2[reading.sensor] = reading.ppm
        room = self._co2_rooms.get(reading.sensor)
        if room is not None:  # a failed reading too: the estimator stops following the air
            self.estimator.co2(room, reading.ppm, at)
        if reading.fault is not None:
            self.faults_counted[reading.sensor] += 1
        if reading.fault != self._co2_faults[reading.sensor]:
            # Report transitions only: a sensor unplugged for a day is one fault, not 2,880.
            self._co2_faults[reading.sensor] = reading.fault
            self._record(DeviceFault(component=f"co2.{reading.sensor}", fault=reading.fault))
            log.warning("CO2 sensor %s: %s", reading.sensor, reading.fault or "reading again")

    def _missed_edges(self, read: dict[str, bool], now: datetime) -> None:
        """Give the estimator the lines whose edges it has not heard (see the module doc)."""
        clock = time.monotonic()
        missed: dict[str, bool] = {}
        for room, raised in read.items():
            if room in self._lines and self._lines[room] == raised:
                self._line_differs.pop(room, None)
                continue
            since = self._line_differs.setdefault(room, clock)
            if room not in self._lines or clock - since >= MISSED_EDGE_AFTER:
                missed[room] = raised  # never heard (at start), or an edge lost
        if missed:
            self.estimator.pir_levels(missed, now)
            self._lines.update(missed)
            for room in missed:
                self._line_differs.pop(room, None)

    def _watch_beams(self, blocked: list[str], now: datetime) -> None:
        """Report a beam held broken (transitions only), and read the door without the
        counter while it is (see the module doc)."""
        if not blocked:
            self._blocked_since = None
        elif self._blocked_since is None:
            self._blocked_since = now
        since = self._blocked_since
        fault = None
        if since is not None and now - since >= BEAM_BLOCKED_AFTER:
            fault = "both_blocked" if len(blocked) == 2 else f"{blocked[0]}_blocked"
        if fault == self._counter_fault:
            return
        self._counter_fault = fault
        self._record(DeviceFault(component="counter", fault=fault))
        log.warning("door counter: %s", fault or "both beams clear again")
        self.estimator.counter_working(fault is None)

    # -- output ------------------------------------------------------------------------------------
    @property
    def last(self) -> OccupancySample | None:
        """The newest sample sent."""
        return self._last

    def tick(self, now: datetime) -> OccupancySample | None:
        """Let time pass for the estimator; send a sample if one is due (a minute passed, or
        the count, presence or a room changed)."""
        if self._motion is not None:
            self._missed_edges(self._motion.moving(), now)
        if self._counter is not None:
            self._watch_beams(self._counter.blocked(), now)
        self.estimator.tick(now)
        estimate = self.estimator.estimate(now)
        changed = self._last is None or (
            (estimate.count, estimate.present, estimate.rooms)
            != (self._last.count, self._last.present, self._last.rooms)
        )
        due = self._last_at is None or now - self._last_at >= timedelta(
            seconds=self.cfg.sample_seconds
        )
        if not (changed or due):
            return None
        cause = "start" if self._last is None else "change" if changed else "minute"
        sample = OccupancySample(
            count=estimate.count,
            low=estimate.low,
            high=estimate.high,
            capacity=self.cfg.capacity,
            confidence=estimate.confidence,
            uncertain=estimate.uncertain,
            present=estimate.present,
            rooms=estimate.rooms,
            co2=dict(self.co2),
            cause=cause,
        )
        self._last, self._last_at = sample, now
        self._record(sample)
        if self._publish_live is not None:
            self._publish_live(sample)
        return sample
