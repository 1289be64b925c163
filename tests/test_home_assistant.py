"""Home Assistant discovery as Home Assistant reads it: every template renders for what the
door really publishes (also without a capacity, a door state or sensors), ids never collide,
only documented keys are used, and entities a door no longer has are removed."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import jinja2
import pytest

from edge.agent.home_assistant import PUBLISHED_KEY, discovery_messages, discovery_plan
from edge.agent.occupancy_config import OccupancyConfig
from edge.agent.store import EdgeStore
from hafen.protocol import LiveState, encode_json

#: The keys of MQTT discovery for sensor and binary_sensor that Home Assistant documents
#: (https://www.home-assistant.io/integrations/sensor.mqtt/, binary_sensor.mqtt/).
DOCUMENTED = {
    "availability_template", "availability_topic", "default_entity_id", "device",
    "device_class", "icon", "json_attributes_template", "json_attributes_topic", "name",
    "object_id", "origin", "state_class", "state_topic", "unique_id", "unit_of_measurement",
    "value_template",
}  # fmt: skip
TEMPLATES = ("value_template", "json_attributes_template")


def _config(**extra) -> OccupancyConfig:
    return OccupancyConfig.model_validate(
        {
            "rooms": [{"name": "main", "pin": 5}, {"name": "meeting", "pin": 6}],
            "co2": [{"name": "air", "port": "/dev/null", "model": "mhz19b"}],
            "home_assistant": {"enabled": True},
            **extra,
        }
    )


def _published(**fields) -> dict:
    """The live state as the door retains it on .../occupancy (None fields left out)."""
    state = LiveState(count=3, confidence=0.8, present=True, at=datetime.now(UTC), **fields)
    return json.loads(encode_json(state))


@pytest.mark.parametrize(
    "state",
    [
        _published(
            capacity=24, rooms={"main": True}, co2={"air": 612}, door_locked=True, door_open=False
        ),
        _published(),  # no capacity, no rooms or CO2 yet, the door's state unknown
        _published(low=2, high=5, capacity=24),  # the count's 90 % interval
        _published(co2={"air": None}),  # a failed reading
    ],
)
def test_every_template_renders_for_what_the_door_publishes(state):
    # StrictUndefined: what Home Assistant would log as an error fails here.
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    for _topic, payload in discovery_messages(_config(), "leipzig-ost", "front-door", "0.1"):
        config = json.loads(payload)
        for key in TEMPLATES:
            if key in config:
                env.from_string(config[key]).render(value_json=state)
        availability = env.from_string(config["availability_template"])
        assert availability.render(value_json={"online": True}) == "online"


def test_the_attributes_hold_the_capacity_only_when_there_is_one():
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    sensor = next(
        json.loads(p) for t, p in discovery_messages(_config(), "a", "b", "0.1") if "occupancy" in t
    )
    template = env.from_string(sensor["json_attributes_template"])
    assert json.loads(template.render(value_json=_published(capacity=24)))["capacity"] == 24
    assert json.loads(template.render(value_json=_published()))["capacity"] is None


def test_the_attributes_hold_the_interval_only_when_the_door_sends_one():
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    sensor = next(
        json.loads(p) for t, p in discovery_messages(_config(), "a", "b", "0.1") if "occupancy" in t
    )
    template = env.from_string(sensor["json_attributes_template"])
    attributes = json.loads(template.render(value_json=_published(low=2, high=5)))
    assert (attributes["low"], attributes["high"], attributes["confidence"]) == (2, 5, 0.8)
    before = _published()  # a door from before the interval sends neither bound
    assert "low" not in before and "high" not in before
    attributes = json.loads(template.render(value_json=before))
    assert (attributes["low"], attributes["high"]) == (None, None)


def test_ids_never_collide_and_use_only_what_home_assistant_allows():
    pairs = [("a", "b_c"), ("a_b", "c"), ("leipzig-ost", "door"), ("leipzig_ost", "door")]
    seen: dict[str, tuple[str, str]] = {}
    for site, device in pairs:
        for topic, payload in discovery_messages(_config(), site, device, "0.1"):
            config = json.loads(payload)
            assert set(config) <= DOCUMENTED, set(config) - DOCUMENTED
            assert re.fullmatch(r"[a-z0-9_]+", config["unique_id"])
            assert config["default_entity_id"].endswith("." + config["object_id"])
            assert config["origin"]["name"] == "hafen"
            assert seen.setdefault(config["unique_id"], (site, device)) == (site, device)
            assert seen.setdefault(topic, (site, device)) == (site, device)


def test_the_door_is_discovered_open_or_shut():
    door = next(
        json.loads(p) for t, p in discovery_messages(_config(), "a", "b", "0.1") if "_door/" in t
    )
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    assert door["device_class"] == "door"
    render = env.from_string(door["value_template"]).render
    assert render(value_json=_published(door_open=True)) == "ON"
    assert render(value_json=_published(door_open=False)) == "OFF"


def test_entities_a_door_no_longer_has_are_removed(tmp_path):
    store = EdgeStore(tmp_path / "edge.db")
    try:
        first = dict(discovery_plan(store, _config(), "a", "b", "0.1"))
        assert all(first.values())  # all configs, nothing to clear
        renamed = _config(rooms=[{"name": "main", "pin": 5}, {"name": "office", "pin": 6}])
        second = dict(discovery_plan(store, renamed, "a", "b", "0.1"))
        cleared = [t for t, p in second.items() if p == b""]
        assert len(cleared) == 1 and cleared[0].endswith("_room_meeting/config")
        off = _config(home_assistant={"enabled": False})
        third = dict(discovery_plan(store, off, "a", "b", "0.1"))
        assert set(third) == set(first) | set(second) and not any(third.values())
        # Remembered: a door that restarts before it could connect still clears them.
        assert dict(discovery_plan(store, off, "a", "b", "0.1")) == third
        assert json.loads(store.get_meta(PUBLISHED_KEY) or "[]")
    finally:
        store.close()
