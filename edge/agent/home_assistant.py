"""Home Assistant MQTT discovery for a space: occupancy, room presence, CO2 and the door lock.

Each entity reads the device's retained live state (``.../occupancy``) and is available while
the device's retained state says it is online. Published retained on every connection, only
when ``[occupancy.home_assistant] enabled = true``.
"""

from __future__ import annotations

import json

from edge.agent.config import OccupancyConfig
from hafen import protocol

ONLINE_TEMPLATE = "{{ 'online' if value_json.online else 'offline' }}"


def discovery_messages(
    cfg: OccupancyConfig, site: str, device: str, software: str
) -> list[tuple[str, bytes]]:
    """(topic, payload) of every entity's discovery config."""
    prefix = cfg.home_assistant.prefix
    base_id = f"hafen_{site}_{device}".replace("-", "_")
    shared = {
        "state_topic": protocol.occupancy_topic(site, device),
        "availability_topic": protocol.state_topic(site, device),
        "availability_template": ONLINE_TEMPLATE,
        "device": {
            "identifiers": [base_id],
            "name": f"hafen {site} {device}",
            "manufacturer": "hafen",
            "model": "door and occupancy",
            "sw_version": software,
        },
    }
    entities: list[tuple[str, str, dict[str, object]]] = [
        (
            "sensor",
            "occupancy",
            {
                "name": "Occupancy",
                "unit_of_measurement": "people",
                "state_class": "measurement",
                "icon": "mdi:account-group",
                "value_template": "{{ value_json.count }}",
                "json_attributes_topic": protocol.occupancy_topic(site, device),
                "json_attributes_template": (
                    "{{ {'confidence': value_json.confidence,"
                    " 'capacity': value_json.capacity} | tojson }}"
                ),
            },
        ),
        (
            "binary_sensor",
            "lock",
            {
                "name": "Door lock",
                "device_class": "lock",  # on means unlocked
                "value_template": "{{ 'OFF' if value_json.door_locked else 'ON' }}",
            },
        ),
    ]
    for room in cfg.rooms:
        entities.append(
            (
                "binary_sensor",
                f"room_{room.name}",
                {
                    "name": f"{room.name} presence",
                    "device_class": "occupancy",
                    "value_template": (
                        f"{{{{ 'ON' if value_json.rooms.get('{room.name}') else 'OFF' }}}}"
                    ),
                },
            )
        )
    for sensor in cfg.co2:
        entities.append(
            (
                "sensor",
                f"co2_{sensor.name}",
                {
                    "name": f"{sensor.name} CO2",
                    "device_class": "carbon_dioxide",
                    "unit_of_measurement": "ppm",
                    "state_class": "measurement",
                    # None (a failed reading) makes the entity "unknown", never a made-up value.
                    "value_template": f"{{{{ value_json.co2.get('{sensor.name}') }}}}",
                },
            )
        )
    messages = []
    for component, key, config in entities:
        object_id = f"{base_id}_{key}".replace("-", "_")
        payload = {**shared, **config, "unique_id": object_id, "object_id": object_id}
        topic = protocol.discovery_topic(prefix, component, object_id)
        messages.append((topic, json.dumps(payload, separators=(",", ":")).encode()))
    return messages
