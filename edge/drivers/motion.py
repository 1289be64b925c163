"""PIR motion sensors, one per room, on gpiozero's ``MotionSensor``.

A PIR module (HC-SR501, AM312) raises its output while it sees movement and holds it for its
own set time; each rising edge is one "motion" for the estimator. ``Pir`` is one sensor on one
pin; ``RoomMotion`` holds a site's sensors by room, built from ``RoomSettings``
(``edge.drivers.motion_settings``) by ``RoomMotion.from_settings``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from gpiozero import MotionSensor

from edge.drivers.motion_settings import RoomSettings


class Pir:
    """One PIR on one pin; calls ``on_motion`` on each movement seen."""

    def __init__(
        self, pin: int | str, on_motion: Callable[[], None], *, pull_up: bool = False
    ) -> None:
        # queue_len=1: the module already debounces and holds; react to the edge at once.
        self._sensor = MotionSensor(pin, pull_up=pull_up, queue_len=1)
        self._sensor.when_motion = on_motion

    @property
    def motion_detected(self) -> bool:
        """Whether the PIR's output is raised right now."""
        return bool(self._sensor.motion_detected)

    def close(self) -> None:
        self._sensor.close()


class RoomMotion:
    """The PIRs of a site's rooms, by room name."""

    def __init__(self, sensors: Mapping[str, Pir]) -> None:
        self._sensors = dict(sensors)

    @classmethod
    def from_settings(
        cls, rooms: Iterable[RoomSettings], on_motion: Callable[[str], None]
    ) -> RoomMotion:
        """A PIR per room that calls ``on_motion(room)``; the pins already taken are given back
        if one cannot be had."""
        motion = cls({})
        try:
            for room in rooms:
                motion._sensors[room.name] = Pir(
                    room.pin, _calling(on_motion, room.name), pull_up=room.pull_up
                )
        except Exception:
            motion.close()
            raise
        return motion

    def moving(self) -> dict[str, bool]:
        """Which rooms' PIRs are raised right now."""
        return {name: sensor.motion_detected for name, sensor in self._sensors.items()}

    def close(self) -> None:
        for sensor in self._sensors.values():
            sensor.close()
        self._sensors.clear()


def _calling(on_motion: Callable[[str], None], room: str) -> Callable[[], None]:
    # No parameters: gpiozero passes the device to a callback that can take one argument.
    return lambda: on_motion(room)
