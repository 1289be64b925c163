"""The ``[occupancy]`` section through ``hafen edge check-config``: the rooms' air, the CO2
sensors' rooms, the door counter and its pins, the PIRs' hold, the retired key, and the
warnings a valid config still earns; and what enrolling again keeps of it."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import tomli_w

from edge.agent.config import EdgeConfig
from edge.agent.enrolment import DevicePaths, hardware_sections
from edge.agent.room_air import LITRES_PER_PERSON_MINUTE, RoomAir
from hafen.config import validate_config
from tests.support.edge import edge_config_dict
from tests.support.edge_cli import check, failed, write_config

ROOT = Path(__file__).resolve().parents[1]


def occupancy(**keys) -> dict:
    """Two rooms with PIRs, the coworking room's air known and read by a sensor."""
    section = {
        "rooms": [
            {"name": "coworking", "pin": 5, "volume_m3": 180, "air_changes_per_hour": 3},
            {"name": "meeting", "pin": 6, "volume_m3": 60},
        ],
        "co2": [
            {"name": "air", "port": "/dev/serial0", "model": "mhz19b", "room": "coworking"},
            {"name": "small", "port": "/dev/ttyUSB0", "model": "s8", "room": "meeting"},
        ],
    }
    return section | keys


def with_occupancy(tmp_path: Path, section: dict) -> Path:
    config = edge_config_dict(tmp_path)
    config["occupancy"] = section
    return write_config(tmp_path, config)


def loaded(tmp_path: Path, section: dict) -> EdgeConfig:
    config = edge_config_dict(tmp_path)
    config["occupancy"] = section
    return validate_config(config, EdgeConfig)


def test_rooms_with_air_and_sensors_in_them_are_counted_and_check_cleanly(tmp_path):
    section = occupancy(
        pir_hold_seconds=8,
        litres_per_person_minute=0.3,
        counter={"outer": {"pin": 13}, "inner": {"pin": 19}},
    )
    result = check(with_occupancy(tmp_path, section))
    assert (result.exit_code, result.stderr) == (0, ""), result.output
    cfg = loaded(tmp_path, section).occupancy
    assert cfg is not None
    assert cfg.air() == (
        ("coworking", RoomAir(180, changes_open=3, changes_closed=0.5)),
        ("meeting", RoomAir(60, changes_open=2.0, changes_closed=0.5)),
    )
    assert (cfg.pir_hold_seconds, cfg.litres_per_person_minute) == (8, 0.3)
    assert cfg.counter is not None and cfg.notes() == []


def test_without_the_new_keys_nothing_is_counted_by_air_and_defaults_hold(tmp_path):
    cfg = loaded(tmp_path, {"rooms": [{"name": "hall", "pin": 5}]}).occupancy
    assert cfg is not None
    assert cfg.air() == () and cfg.counter is None and cfg.notes() == []
    assert (cfg.pir_hold_seconds, cfg.litres_per_person_minute) == (30, LITRES_PER_PERSON_MINUTE)


def test_a_sensor_naming_an_unknown_room_is_an_error_with_a_suggestion(tmp_path):
    section = occupancy()
    section["co2"][1]["room"] = "meting"
    message = failed(check(with_occupancy(tmp_path, section)))
    line = "  occupancy: co2.1.room: no room is named 'meting' (did you mean 'meeting'?)\n"
    assert line in message
    section["co2"][1]["room"] = "attic"
    message = failed(check(with_occupancy(tmp_path, section)))
    assert "  occupancy: co2.1.room: no room is named 'attic'\n" in message


def test_a_sensor_naming_a_room_where_there_are_none_says_so(tmp_path):
    section = {"co2": [{"port": "/dev/serial0", "model": "s8", "room": "hall"}]}
    message = failed(check(with_occupancy(tmp_path, section)))
    assert "co2.0.room: no room is named 'hall' (no rooms are configured)" in message


def test_two_sensors_in_one_room_are_refused(tmp_path):
    section = occupancy()
    section["co2"][1]["room"] = "coworking"
    message = failed(check(with_occupancy(tmp_path, section)))
    assert "co2.1.room: 'coworking' is read by co2.0 already" in message


@pytest.mark.parametrize(
    ("change", "line"),
    [
        (lambda s: s["rooms"][0].update(volume_m3=0), "occupancy.rooms.0.volume_m3:"),
        (lambda s: s["rooms"][0].update(volume_m3=50_000), "occupancy.rooms.0.volume_m3:"),
        (lambda s: s["rooms"][1].update(air_changes_per_hour=0), "rooms.1.air_changes_per_hour:"),
        (lambda s: s["rooms"][1].update(air_changes_per_hour_closed=99), "per_hour_closed:"),
        (lambda s: s.update(pir_hold_seconds=0), "occupancy.pir_hold_seconds:"),
        (lambda s: s.update(pir_hold_seconds=3600), "occupancy.pir_hold_seconds:"),
        (lambda s: s.update(litres_per_person_minute=5), "occupancy.litres_per_person_minute:"),
        (lambda s: s["co2"][0].update(room="Coworking"), "occupancy.co2.0.room:"),
    ],
)
def test_values_out_of_bounds_name_their_key(tmp_path, change, line):
    section = occupancy()
    change(section)
    assert line in failed(check(with_occupancy(tmp_path, section)))


@pytest.mark.parametrize(
    ("change", "line"),
    [
        (
            lambda s: s["rooms"][0].update(volume=100),
            "occupancy.rooms.0.volume: unknown key (did you mean 'volume_m3'?)",
        ),
        (
            lambda s: s["rooms"][0].update(air_changes_per_hour_close=1),
            "unknown key (did you mean 'air_changes_per_hour_closed'?)",
        ),
        (
            lambda s: s.update(pir_hold=20),
            "occupancy.pir_hold: unknown key (did you mean 'pir_hold_seconds'?)",
        ),
        (
            lambda s: s.update(counter={"outer": {"pin": 13}, "iner": {"pin": 19}}),
            "occupancy.counter.iner: unknown key (did you mean 'inner'?)",
        ),
        (
            lambda s: s["co2"][0].update(rooms="coworking"),
            "occupancy.co2.0.rooms: unknown key (did you mean 'room'?)",
        ),
    ],
)
def test_misspelt_keys_are_named_with_the_right_one(tmp_path, change, line):
    section = occupancy()
    change(section)
    assert line in failed(check(with_occupancy(tmp_path, section)))


def test_the_counters_beams_join_the_pin_check(tmp_path):
    section = occupancy(counter={"outer": {"pin": "GPIO6"}, "inner": {"pin": 19}})
    message = failed(check(with_occupancy(tmp_path, section)))
    assert "  occupancy: counter.outer.pin 6 is already used by rooms.1\n" in message
    section = occupancy(counter={"outer": {"pin": 13}, "inner": {"pin": 27}})
    message = failed(check(with_occupancy(tmp_path, section)))
    assert "  occupancy: counter.inner.pin 27 is already used by door.contact\n" in message


def test_the_retired_empty_after_minutes_is_accepted_with_a_warning(tmp_path):
    """An old config still loads after a fleet update: a door never stops over a key whose
    rule is gone; check-config and the agent's log say to remove it."""
    path = with_occupancy(tmp_path, {"empty_after_minutes": 20, "capacity": 8})
    result = check(path)
    assert result.exit_code == 0 and ": ok" in result.stdout
    assert result.stderr == (
        f"{path}: warning: occupancy.empty_after_minutes is no longer used and is ignored"
        " (the count weighs how long every PIR has been quiet; no fixed time empties it);"
        " remove it\n"
    )
    cfg = loaded(tmp_path, {"empty_after_minutes": "anything", "capacity": 8}).occupancy
    assert cfg is not None and cfg.capacity == 8 and len(cfg.notes()) == 1
    assert "empty_after_minutes" not in cfg.model_dump()


def test_warnings_say_which_rooms_the_co2_does_not_count(tmp_path):
    section = occupancy()
    del section["rooms"][1]["volume_m3"]  # the meeting room's sensor is shown, not counted
    section["rooms"].append({"name": "booth", "pin": 12, "volume_m3": 4})  # no sensor
    section["rooms"].append({"name": "loft", "pin": 16, "air_changes_per_hour": 4})
    result = check(with_occupancy(tmp_path, section))
    assert result.exit_code == 0
    warnings = result.stderr.splitlines()
    assert [w.split(": warning: ")[1] for w in warnings] == [
        "occupancy.rooms.1 (meeting) has no volume_m3: CO2 sensor 'small' is shown, not counted",
        "occupancy.rooms.2 (booth) has a volume_m3 but no CO2 sensor names it (co2.room)",
        "occupancy.rooms.3 (loft) sets its air changes but no volume_m3: they are not used",
        "the CO2 count covers coworking, not meeting, booth, loft: it cannot see people there,"
        " and pulls the count low while they are",
    ]


@pytest.mark.parametrize("with_counter", [False, True])
def test_the_shipped_example_checks_without_warnings(tmp_path, with_counter):
    """As shipped, and with its commented-out counter switched on."""
    key = tmp_path / "card.key"
    key.write_text("0123456789abcdef" * 2)
    text = (ROOT / "docs/edge.example.toml").read_text().replace("/etc/hafen/card.key", str(key))
    if with_counter:
        head, counter = text.split("# [occupancy.counter]\n")
        section, tail = counter.split("\n\n", 1)
        section = re.sub(r"^# ", "", section, flags=re.MULTILINE)
        text = f"{head}[occupancy.counter]\n{section}\n\n{tail}"
    path = tmp_path / "edge.toml"
    path.write_text(text)
    result = check(path)
    assert (result.exit_code, result.stderr) == (0, ""), result.output
    cfg = validate_config(tomllib.loads(text), EdgeConfig).occupancy
    assert cfg is not None and (cfg.counter is not None) == with_counter


def test_enrolling_again_keeps_the_sensing_and_leaves_what_the_hub_says(tmp_path):
    """The rooms' air, the sensors' rooms, the counter and the PIRs' hold describe the
    building and its wiring, which the hub does not know: they survive a new enrolment."""
    wiring = edge_config_dict(tmp_path)
    wiring["occupancy"] = occupancy(
        capacity=12,
        pir_hold_seconds=8,
        litres_per_person_minute=0.3,
        counter={"outer": {"pin": 13}, "inner": {"pin": 19}},
    )
    hardware = tmp_path / "wiring.toml"
    hardware.write_text(tomli_w.dumps(wiring))
    kept = hardware_sections(DevicePaths(etc=tmp_path / "etc"), hardware)["occupancy"]
    assert kept == {k: v for k, v in wiring["occupancy"].items() if k != "capacity"}
