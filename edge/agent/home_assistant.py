"""Home Assistant MQTT discovery for a space: occupancy, room presence, CO2, the door's lock
and whether it is open.

Each entity reads the device's retained live state (``.../occupancy``) and is available while
the device's retained state says it is online. Published retained on every connection, only
when ``[occupancy.home_assistant] enabled = true``.

Ids: Home Assistant allows only ``[a-z0-9_]``, and spelling ``-`` as ``_`` made ids of
different doors collide (``leipzig-ost`` and ``leipzig_ost``; site ``a`` with device ``b_c``
and site ``a_b`` with device ``c``). Each id ends in a short hash of the exact site and
device, so two doors never share one. Entities that a door no longer has (a room renamed,
discovery switched off) are removed: ``stale_discovery`` names the configs it published
before, and an empty retained config deletes each.

Templates read optional fields with ``.get``: a site without a capacity sends none, and
``value_json.capacity`` would fail on every message.
"""

from __future__ import annotations

import hashlib
import json

from edge.agent.occupancy_config import OccupancyConfig
from edge.agent.store import EdgeStore
from hafen import protocol

ONLINE_TEMPLATE = "{{ 'online' if value_json.online else 'offline' }}"
#: The most stale discovery topics a door remembers to clear (rooms renamed over the years).
MAX_REMEMBERED = 200


def entity_base(site: str, device: str) -> str:
    """The prefix of a door's ids: readable, and unique by a hash of the exact names."""
    digest = hashlib.sha256(f"{site}/{device}".encode()).hexdigest()[:8]
    return f"hafen_{site}_{device}".replace("-", "_") + f"_{digest}"


def stale_discovery(previous: list[str], current: list[str]) -> list[str]:
    """The discovery topics published before and not now, to be cleared (at most
    MAX_REMEMBERED, the newest kept)."""
    now = set(current)
    return [topic for topic in previous if topic not in now][-MAX_REMEMBERED:]


def discovery_messages(
    cfg: OccupancyConfig, site: str, device: str, software: str
) -> list[tuple[str, bytes]]:
    """(topic, payload) of every entity's discovery config."""
    prefix = cfg.home_assistant.prefix
    base_id = entity_base(site, device)
    shared = {
        "origin": {"name": "hafen", "sw_version": software},
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
                # low and high: the count's 90 % interval (None from a door without one).
                "json_attributes_template": (
                    "{{ {'confidence': value_json.get('confidence'),"
                    " 'low': value_json.get('low'), 'high': value_json.get('high'),"
                    " 'capacity': value_json.get('capacity')} | tojson }}"
                ),
            },
        ),
        (
            "binary_sensor",
            "lock",
            {
                "name": "Door lock",
                "device_class": "lock",  # on means unlocked
                "value_template": "{{ 'OFF' if value_json.get('door_locked') else 'ON' }}",
            },
        ),
        (
            "binary_sensor",
            "door",
            {
                "name": "Door",
                "device_class": "door",  # on means open
                "value_template": "{{ 'ON' if value_json.get('door_open') else 'OFF' }}",
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
                        f"{{{{ 'ON' if (value_json.get('rooms') or {{}}).get('{room.name}')"
                        " else 'OFF' }}"
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
                    "value_template": (
                        f"{{{{ (value_json.get('co2') or {{}}).get('{sensor.name}') }}}}"
                    ),
                },
            )
        )
    messages = []
    for component, key, config in entities:
        object_id = f"{base_id}_{key}".replace("-", "_")
        payload = {
            **shared,
            **config,
            "unique_id": object_id,
            "object_id": object_id,  # Home Assistant before 2025.10
            "default_entity_id": f"{component}.{object_id}",  # and since
        }
        topic = protocol.discovery_topic(prefix, component, object_id)
        messages.append((topic, json.dumps(payload, separators=(",", ":")).encode()))
    return messages


#: Where the store remembers the discovery topics it published (JSON list).
PUBLISHED_KEY = "ha_discovery"


def discovery_plan(
    store: EdgeStore, cfg: OccupancyConfig | None, site: str, device: str, software: str
) -> list[tuple[str, bytes]]:
    """What to publish retained on every connection: each entity's config (when discovery
    is on), and an empty config for each topic published before and gone since, which makes
    Home Assistant remove that entity. The store remembers both, so a door that restarts
    before it could connect still clears them."""
    enabled = cfg is not None and cfg.home_assistant.enabled
    messages = discovery_messages(cfg, site, device, software) if cfg and enabled else []
    current = [topic for topic, _payload in messages]
    try:
        previous = json.loads(store.get_meta(PUBLISHED_KEY) or "[]")
    except ValueError:
        previous = []
    stale = stale_discovery([t for t in previous if isinstance(t, str)], current)
    remembered = current + stale
    if remembered != previous:
        with store.write() as conn:
            store.set_meta(conn, PUBLISHED_KEY, json.dumps(remembered))
    return messages + [(topic, b"") for topic in stale]
