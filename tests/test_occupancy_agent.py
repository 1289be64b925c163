"""Occupancy in the running agent: door, exit button, PIR and a door counter on gpiozero mock
pins, a CO2 sensor on a pty, samples in the outbox."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta

from sim.co2_sensor import SimulatedCo2Sensor
from sim.door import mock_pin, open_door, press_exit, shut_door
from tests.support.edge import ANNA, PIR, motion, outbox, running_agent
from tests.support.waiting import wait_for

#: Every day 07:00 to 22:00 in the site's time (Europe/Berlin: UTC+1 in March).
OPEN = [
    {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "start": "07:00", "end": "22:00"}
]


def walk_through(agent, door, clock: Clock) -> None:
    """Someone goes through the door: it stands open four seconds of the world's clock, as
    it does for one person (an opening of no time at all lets nobody through)."""
    open_door(door, True)
    assert wait_for(lambda: agent.occupancy.estimator.door_open, 3)
    clock.advance(seconds=4)
    shut_door(door)
    assert wait_for(lambda: not agent.occupancy.estimator.door_open, 3)


class Clock:
    """The physical world's wall clock, moved on by the test (minutes pass in an instant).
    It starts a minute before opening: the agent starts with the space (almost) surely empty."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 11, 5, 59, tzinfo=UTC)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self.now

    def advance(self, **delta: float) -> None:
        with self._lock:
            self.now += timedelta(**delta)


def samples(agent) -> list[dict]:
    return [body for kind, body in outbox(agent.store) if kind == "occupancy.sample"]


def faults(agent) -> list[tuple[str, str | None]]:
    return [(b["component"], b.get("fault")) for k, b in outbox(agent.store) if k == "device.fault"]


def decisions(agent) -> list[dict]:
    return [body for kind, body in outbox(agent.store) if kind == "door.decision"]


def test_the_agent_counts_people_through_its_door_and_rooms(tmp_path, mock_pins, caplog):
    sim = SimulatedCo2Sensor(tmp_path / "co2", "mhz19b", ppm=650).start()
    occupancy = {
        "capacity": 8,
        "opening_hours": OPEN,
        "rooms": [{"name": "coworking", "pin": PIR}],
        # No room named: the readings are shown, and count nobody.
        "co2": [{"name": "air", "port": str(sim.link), "model": "mhz19b", "every_seconds": 5}],
        "empty_after_minutes": 20,  # an old config's key, retired: ignored, and logged
    }
    clock = Clock()
    caplog.set_level(logging.WARNING, logger="edge.agent.occupancy_service")
    try:
        with running_agent(
            tmp_path, sections={"occupancy": occupancy}, wall_clock=clock, unlock_seconds=0.3
        ) as (agent, cfg, card):
            shut_door(cfg.door)
            assert wait_for(lambda: samples(agent), 3)
            assert "occupancy.empty_after_minutes is no longer used" in caplog.text
            first = samples(agent)[0]
            assert (first["count"], first["low"], first["high"]) == (0, 0, 0)
            assert first["cause"] == "start" and first["confidence"] < 1.0  # a late stayer?
            assert wait_for(lambda: agent.occupancy.co2 == {"air": 650}, 8)
            clock.advance(minutes=1)  # CO2 goes out with the minute's sample
            minute = {"co2": {"air": 650}, "cause": "minute"}
            assert wait_for(lambda: samples(agent)[-1].items() >= minute.items(), 3)

            # Started mid-day, the agent cannot know whether someone sat inside: forty quiet
            # minutes tell it nobody does.
            clock.advance(minutes=40)
            assert wait_for(lambda: samples(agent)[-1]["confidence"] > 0.95, 3)
            assert (samples(agent)[-1]["high"], samples(agent)[-1]["present"]) == (0, False)

            card.present(ANNA)  # Anna taps in and walks through
            assert wait_for(lambda: any(k == "door.decision" for k, _ in outbox(agent.store)))
            walk_through(agent, cfg.door, clock)
            assert wait_for(lambda: samples(agent)[-1]["count"] == 1, 3)
            assert samples(agent)[-1]["cause"] == "change"

            motion()  # she moves about in the room
            assert wait_for(lambda: samples(agent)[-1]["rooms"] == {"coworking": True}, 3)

            clock.advance(minutes=5)
            press_exit(cfg.door)  # and leaves by the exit button
            walk_through(agent, cfg.door, clock)
            assert wait_for(lambda: samples(agent)[-1]["count"] == 0, 3)
            assert samples(agent)[-1]["present"] is False
            # The count fell as the door opened; motion is read as "someone here" only once
            # the agent has seen the door shut again.
            assert wait_for(lambda: not agent.occupancy.estimator.door_open, 3)

            clock.advance(minutes=10)  # someone the door never saw moves in the room
            motion()
            assert wait_for(lambda: samples(agent)[-1]["count"] == 1, 3)
            assert samples(agent)[-1]["confidence"] < 1.0

            assert samples(agent)[-1]["low"] == 0  # maybe nobody: a false trigger, or gone
            assert samples(agent)[-1]["high"] >= 1

            # Nobody moves for 40 minutes. No rule empties the space: the belief weighs the
            # silence (one seated person rarely keeps still that long), and the count falls;
            # the interval still allows for someone sitting very still.
            clock.advance(minutes=40)
            assert wait_for(lambda: samples(agent)[-1]["count"] == 0, 3)
            fallen = samples(agent)[-1]
            assert fallen["cause"] == "change" and fallen["present"] is False
            assert fallen["rooms"] == {"coworking": False}
            assert fallen["low"] == 0 and fallen["high"] <= 1 and fallen["confidence"] > 0.9

            sim.unplug()  # the CO2 sensor's cable is pulled: a fault, the reading missing
            assert wait_for(lambda: ("co2.air", "port") in faults(agent), 8)
            clock.advance(minutes=1)
            assert wait_for(lambda: samples(agent)[-1]["co2"] == {"air": None}, 3)
            sim.plug()
            assert wait_for(lambda: ("co2.air", None) in faults(agent), 8)
            assert samples(agent)[-1]["co2"]["air"] in (None, 650)
            assert agent._thread.is_alive()
    finally:
        sim.unplug()


OUTER, INNER = 13, 19


def walk(*beams: int) -> None:
    """Someone passes the doorway: each beam in turn broken (a receiver pulled up reads low),
    then each cleared in the same order."""
    for pin in beams:
        mock_pin(pin).drive_low()
    for pin in beams:
        mock_pin(pin).drive_high()


def test_a_door_counter_counts_the_passages_and_reports_a_blocked_beam(tmp_path, mock_pins):
    occupancy = {
        "capacity": 8,
        "opening_hours": OPEN,
        "counter": {"outer": {"pin": OUTER}, "inner": {"pin": INNER}, "bounce_seconds": 0},
    }
    clock = Clock()
    with running_agent(
        tmp_path, sections={"occupancy": occupancy}, wall_clock=clock, unlock_seconds=0.3
    ) as (agent, cfg, card):
        shut_door(cfg.door)
        assert wait_for(lambda: samples(agent), 3)
        card.present(ANNA)  # Anna taps in, and a colleague walks in with her
        assert wait_for(lambda: len(decisions(agent)) == 1, 3)
        open_door(cfg.door, True)
        walk(OUTER, INNER)
        walk(OUTER, INNER)
        shut_door(cfg.door)
        assert wait_for(lambda: samples(agent)[-1]["count"] == 2, 3)
        assert samples(agent)[-1]["confidence"] > 0.9

        open_door(cfg.door, True)  # one of them leaves, without the exit button
        walk(INNER, OUTER)
        shut_door(cfg.door)
        assert wait_for(lambda: samples(agent)[-1]["count"] == 1, 3)

        # A bag left in the outer beam: the counter is blind. The agent ticks at least once a
        # second, so each wait below also lets it look at the beams.
        mock_pin(OUTER).drive_low()
        assert not wait_for(lambda: faults(agent), 1.5)
        clock.advance(minutes=4)  # as long as someone might stand chatting in the doorway
        assert not wait_for(lambda: faults(agent), 1.5)
        clock.advance(minutes=2)
        assert wait_for(lambda: ("counter", "outer_blocked") in faults(agent), 3)
        clock.advance(minutes=1)
        card.present(ANNA)  # the door is read from taps again: Anna comes back in
        assert wait_for(lambda: len(decisions(agent)) == 2, 3)
        open_door(cfg.door, True)
        shut_door(cfg.door)
        assert wait_for(lambda: samples(agent)[-1]["count"] == 2, 3)

        mock_pin(OUTER).drive_high()  # the bag taken away
        assert wait_for(lambda: ("counter", None) in faults(agent), 3)
        assert faults(agent) == [("counter", "outer_blocked"), ("counter", None)]
        open_door(cfg.door, True)
        walk(INNER, OUTER)
        shut_door(cfg.door)
        assert wait_for(lambda: samples(agent)[-1]["count"] == 1, 3)
