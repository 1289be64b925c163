"""The ``[occupancy]`` section: the rooms and their air, the CO2 sensors and the rooms they
hang in, an optional people counter at the door, and how the estimator reads them
(``edge.agent.occupancy``).

The drivers' settings say how a part is wired (``edge.drivers.*_settings``); this module adds
what the estimator needs to know of the place around it, as ``DoorConfig`` adds the door's
behaviour to its hardware.

CO2 counts people only in a room with both a sensor that names it (``co2.room``) and a volume
(``rooms.volume_m3``): the air's mass balance needs both. A site may cover some rooms and not
others; ``notes`` then says which people the CO2 cannot see, for ``check-config`` and the
agent's log, since the config is valid but the count reads low while those rooms are busy.

Keys that meant something once and no longer do stay accepted, ignored, and named by
``notes``: a fleet update must never leave a door unable to start over its config.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from pydantic import Field, ModelWrapValidatorHandler, PrivateAttr, model_validator

from edge.agent.room_air import LITRES_PER_PERSON_MINUTE, RoomAir
from edge.drivers.co2_settings import Co2Settings
from edge.drivers.door_counter_settings import DoorCounterSettings
from edge.drivers.motion_settings import RoomSettings
from hafen.acl import TimeWindow
from hafen.config import Section, did_you_mean
from hafen.ids import Slug

#: Keys no longer used, and why: accepted and ignored, with a warning.
RETIRED_KEYS = {
    "empty_after_minutes": "the count weighs how long every PIR has been quiet; no fixed time"
    " empties it",
}

#: Air changes an hour: a tight old building at night is about 0.1, a ventilated meeting room 10.
AirChanges = Annotated[float, Field(ge=0.05, le=30)]


class RoomConfig(RoomSettings):
    """A room with a PIR, and its air: what lets a CO2 sensor in it count people."""

    #: The room's air in m³ (floor area times ceiling height), from a phone booth (2) to a hall.
    #: Only with a CO2 sensor that names this room (``co2.room``) does the CO2 count people.
    volume_m3: Annotated[float, Field(ge=2, le=20_000)] | None = None
    #: How often ventilation swaps the room's air an hour while the space is open (opening
    #: hours), and while it is closed (ventilation off, windows shut: leaks alone).
    air_changes_per_hour: AirChanges = 2.0
    air_changes_per_hour_closed: AirChanges = 0.5

    def air(self) -> RoomAir | None:
        """The room's air for the estimator, if its volume is known."""
        if self.volume_m3 is None:
            return None
        return RoomAir(self.volume_m3, self.air_changes_per_hour, self.air_changes_per_hour_closed)


class Co2Config(Co2Settings):
    """A CO2 sensor, and the room it hangs in."""

    #: The room (a name under ``rooms``) this sensor reads. With the room's ``volume_m3`` the
    #: readings count people; without a room they are shown in the samples only.
    room: Slug | None = None


class HomeAssistantConfig(Section):
    """MQTT discovery, so the space shows up in a Home Assistant that shares the broker."""

    enabled: bool = False
    prefix: Slug = "homeassistant"


class OccupancyConfig(Section):
    """Occupancy sensing: a headcount from the door, the rooms' PIRs, CO2 and a door counter."""

    #: Up to 500: the estimator keeps a probability for every count up to half as much
    #: again, and a Pi's time per tick grows with it (about 1.5 % of a Pi 3 at 500).
    capacity: Annotated[int, Field(ge=1, le=500)] | None = None
    rooms: list[RoomConfig] = Field(default_factory=list)
    co2: list[Co2Config] = Field(default_factory=list)
    #: A two-beam people counter across the doorway (optional): the door's flows then come
    #: from it rather than from taps and exit presses.
    counter: DoorCounterSettings | None = None
    #: How long the rooms' PIR modules hold their output after the last movement they saw (the
    #: time potentiometer of an HC-SR501: 3 s to 5 min; an AM312 holds about 2 s). One value for
    #: the site, as the estimator takes one: if the modules differ, set the longest, since a
    #: line held past a hold set too short is read as a room that keeps moving.
    pir_hold_seconds: Annotated[float, Field(ge=1, le=600)] = 30.0
    #: CO2 one person breathes out a minute (litres): about 0.25 sitting still, 0.33 at a desk
    #: talking now and then (the default), 0.5 and more on the move (a workshop, a class).
    litres_per_person_minute: Annotated[float, Field(ge=0.1, le=2.0)] = LITRES_PER_PERSON_MINUTE
    #: Opening hours in local time; while closed, the count drifts slowly towards empty (any
    #: movement holds it back), and the rooms' air changes at its closed rate.
    opening_hours: list[TimeWindow] = Field(default_factory=list)
    sample_seconds: Annotated[float, Field(ge=5, le=3600)] = 60.0
    home_assistant: HomeAssistantConfig = HomeAssistantConfig()
    _retired: tuple[str, ...] = PrivateAttr(default=())

    @model_validator(mode="wrap")
    @classmethod
    def _ignore_retired(
        cls, data: Any, handler: ModelWrapValidatorHandler[OccupancyConfig]
    ) -> OccupancyConfig:
        """Take retired keys out before the unknown-key check, and remember them for notes."""
        if not isinstance(data, dict):
            return handler(data)
        retired = tuple(key for key in RETIRED_KEYS if key in data)
        config = handler({k: v for k, v in data.items() if k not in RETIRED_KEYS})
        config._retired = retired
        return config

    @model_validator(mode="after")
    def _names(self) -> OccupancyConfig:
        for what, names in (
            ("rooms", [r.name for r in self.rooms]),
            ("co2", [c.name for c in self.co2]),
        ):
            if len(set(names)) != len(names):
                raise ValueError(f"two {what} have the same name")
        rooms = [r.name for r in self.rooms]
        read_by: dict[str, int] = {}
        for index, sensor in enumerate(self.co2):
            if sensor.room is None:
                continue
            if sensor.room not in rooms:
                known = did_you_mean(sensor.room, rooms) if rooms else " (no rooms are configured)"
                raise ValueError(f"co2.{index}.room: no room is named {sensor.room!r}{known}")
            if sensor.room in read_by:
                # The room's air is one well-mixed zone: one sensor's readings and noise.
                raise ValueError(
                    f"co2.{index}.room: {sensor.room!r} is read by co2.{read_by[sensor.room]}"
                    " already; the count takes one sensor a room"
                )
            read_by[sensor.room] = index
        return self

    def pin_users(self) -> Iterator[tuple[str, int]]:
        """Each room's PIR by its key (``rooms.0``), and the counter's beams, with their pins."""
        for index, room in enumerate(self.rooms):
            yield f"rooms.{index}", room.pin
        if self.counter is not None:
            yield from self.counter.pin_users()

    def air(self) -> tuple[tuple[str, RoomAir], ...]:
        """The rooms whose CO2 counts people: a sensor names them and their volume is known."""
        read = {sensor.room for sensor in self.co2}
        return tuple(
            (room.name, air)
            for room in self.rooms
            if room.name in read and (air := room.air()) is not None
        )

    def notes(self) -> list[str]:
        """What a valid config does differently from what its writer may think, one line each
        (``hafen edge check-config`` prints them, the agent logs them when it starts)."""
        notes = [
            f"occupancy.{key} is no longer used and is ignored ({RETIRED_KEYS[key]}); remove it"
            for key in self._retired
        ]
        counted = {name for name, _ in self.air()}
        read = {sensor.room: sensor.name for sensor in self.co2 if sensor.room is not None}
        for index, room in enumerate(self.rooms):
            key = f"occupancy.rooms.{index} ({room.name})"
            if room.volume_m3 is None and room.model_fields_set & {
                "air_changes_per_hour",
                "air_changes_per_hour_closed",
            }:
                notes.append(f"{key} sets its air changes but no volume_m3: they are not used")
            elif room.volume_m3 is not None and room.name not in read:
                notes.append(f"{key} has a volume_m3 but no CO2 sensor names it (co2.room)")
            elif room.volume_m3 is None and room.name in read:
                notes.append(
                    f"{key} has no volume_m3: CO2 sensor {read[room.name]!r} is shown, not counted"
                )
        unseen = [room.name for room in self.rooms if room.name not in counted]
        if counted and unseen:
            notes.append(
                f"the CO2 count covers {', '.join(sorted(counted))}, not {', '.join(unseen)}:"
                " it cannot see people there, and pulls the count low while they are"
            )
        return notes
