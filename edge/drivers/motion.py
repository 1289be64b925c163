"""PIR motion sensors, one per room, on gpiozero's ``MotionSensor``.

A PIR module (HC-SR501, AM312) raises its output when it sees movement and holds it for its
own set time after the *last* movement, so a busy room keeps the line high for hours. Both
edges are reported: the rise says someone moved after a quiet spell, the fall that nobody has
moved for the hold time, and a line that stays high between them says the room keeps moving.
(Reading only the rise made a room held busy look idle.) ``Pir`` is one sensor on one pin;
``RoomMotion`` holds a site's sensors by room, built from ``RoomSettings``
(``edge.drivers.motion_settings``) by ``RoomMotion.from_settings``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from gpiozero import MotionSensor

from edge.drivers.motion_settings import RoomSettings


class Pir:
    """One PIR on one pin; calls ``on_motion`` when its line rises and ``on_no_motion`` when
    it falls."""

    def __init__(
        self,
        pin: int | str,
        on_motion: Callable[[], None],
        on_no_motion: Callable[[], None] | None = None,
        *,
        pull_up: bool = False,
    ) -> None:
        # queue_len=1: the module already debounces and holds; react to the edge at once.
        self._sensor = MotionSensor(pin, pull_up=pull_up, queue_len=1)
        self._sensor.when_motion = on_motion
        if on_no_motion is not None:  # gpiozero warns of a callback set to None
            self._sensor.when_no_motion = on_no_motion

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
        cls, rooms: Iterable[RoomSettings], on_edge: Callable[[str, bool], None]
    ) -> RoomMotion:
        """A PIR per room that calls ``on_edge(room, True)`` when its line rises and
        ``on_edge(room, False)`` when it falls; the pins already taken are given back if one
        cannot be had."""
        motion = cls({})
        try:
            for room in rooms:
                motion._sensors[room.name] = Pir(
                    room.pin,
                    _calling(on_edge, room.name, True),
                    _calling(on_edge, room.name, False),
                    pull_up=room.pull_up,
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


def _calling(on_edge: Callable[[str, bool], None], room: str, raised: bool) -> Callable[[], None]:
    # No parameters: gpiozero passes the device to a callback that can take one argument.
    return lambda: on_edge(room, raised)
