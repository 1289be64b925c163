"""PIR motion sensors, one per room, on gpiozero's ``MotionSensor``.

A PIR module (HC-SR501, AM312) raises its output while it sees movement and holds it for its
own set time; each rising edge is one "motion" for the estimator.
"""

from __future__ import annotations

from collections.abc import Callable

from gpiozero import MotionSensor

from edge.agent.config import RoomConfig


class RoomMotion:
    """The PIRs of a site's rooms; calls ``on_motion(room)`` on each movement seen."""

    def __init__(self, rooms: list[RoomConfig], on_motion: Callable[[str], None]) -> None:
        self._sensors: dict[str, MotionSensor] = {}
        try:
            for room in rooms:
                # queue_len=1: the module already debounces and holds; react to the edge at once.
                sensor = MotionSensor(room.pin, pull_up=room.pull_up, queue_len=1)
                sensor.when_motion = _calling(on_motion, room.name)
                self._sensors[room.name] = sensor
        except Exception:
            self.close()
            raise

    def moving(self) -> dict[str, bool]:
        """Which rooms' PIRs are raised right now."""
        return {name: bool(sensor.motion_detected) for name, sensor in self._sensors.items()}

    def close(self) -> None:
        for sensor in self._sensors.values():
            sensor.close()
        self._sensors.clear()


def _calling(on_motion: Callable[[str], None], room: str) -> Callable[[], None]:
    # No parameters: gpiozero passes the device to a callback that can take one argument.
    return lambda: on_motion(room)
