"""A door ready for a technician's self-test: its config as TOML, a CO2 sensor on a pty, a
mosquitto, and the site's list signed by the hub and applied as the agent applies it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner, Result

from edge.agent.config import EdgeConfig, load_edge_config
from edge.agent.remote import AclUpdater
from edge.agent.store import EdgeStore
from hafen import protocol
from hafen.acl import AccessList, AccessListDelta
from hafen.cli import app
from hafen.signing import public_key_text, seal
from sim.broker import LocalBroker
from sim.co2_sensor import SimulatedCo2Sensor
from tests.support.edge import ANNA, edge_config_dict, free_udp_port, site_acl, toml_text

#: The pins of edge_config_dict's door, and the room's PIR.
STRIKE, CONTACT, EXIT, LED, BUZZER, PIR = 17, 27, 22, 23, 24, 5
#: The door counter's outer and inner beams.
COUNTER = (13, 19)


def sealed(key: Ed25519PrivateKey, doc: AccessList | AccessListDelta) -> bytes:
    """The list as the hub publishes it (hub.access_lists): signed, compressed."""
    return seal(key, protocol.acl_header(doc, datetime.now(UTC)), protocol.acl_body(doc))


def apply_signed(cfg: EdgeConfig, key: Ed25519PrivateKey, doc: AccessList) -> None:
    """Apply ``doc`` signed by ``key`` through the agent's own updater (verified, recorded)."""
    assert cfg.hub is not None
    store = EdgeStore(cfg.store.path, cfg.store.synchronous)
    try:
        tz = ZoneInfo(cfg.site.timezone)
        updater = AclUpdater(store, cfg.site.id, tz, cfg.cards.key(), cfg.hub.trusted(), _none)
        assert updater.handle(sealed(key, doc)) == doc.version
    finally:
        store.close()


def _none() -> None:
    pass


@dataclass
class Door:
    """A door's config file and what stands around it."""

    path: Path
    cfg: EdgeConfig
    hub_key: Ed25519PrivateKey
    co2: SimulatedCo2Sensor
    broker: LocalBroker | None = None

    def selftest(self, *options: str) -> Result:
        """``hafen edge selftest -c CONFIG OPTIONS`` as a technician runs it."""
        return CliRunner().invoke(app, ["edge", "selftest", "-c", str(self.path), *options])


def door_config(
    tmp_path: Path, broker_port: int, hub_key: Ed25519PrivateKey, co2_port: Path
) -> dict:
    """A networked door with a room's PIR, a CO2 sensor and a door counter, on a free UDP
    reader."""
    raw = edge_config_dict(tmp_path, reader=f"udp:127.0.0.1:{free_udp_port()}")
    raw["mqtt"] = {"host": "127.0.0.1", "port": broker_port, "keepalive": 5}
    raw["hub"] = {"public_keys": [public_key_text(hub_key)]}
    raw["occupancy"] = {
        "rooms": [{"name": "coworking", "pin": PIR}],
        "co2": [{"name": "air", "port": str(co2_port), "model": "mhz19b"}],
        "counter": {"outer": {"pin": COUNTER[0]}, "inner": {"pin": COUNTER[1]}},
    }
    return raw


def write_door(tmp_path: Path, raw: dict, hub_key: Ed25519PrivateKey, co2: SimulatedCo2Sensor):
    """Write ``raw`` as the door's TOML file, as a technician finds it in /etc/hafen."""
    path = tmp_path / "edge.toml"
    occupancy = raw.pop("occupancy", None)
    text = toml_text(raw)
    if occupancy:  # arrays of tables, which toml_text does not write
        for room in occupancy["rooms"]:
            text += f'\n[[occupancy.rooms]]\nname = "{room["name"]}"\npin = {room["pin"]}\n'
        for sensor in occupancy["co2"]:
            text += (
                f'\n[[occupancy.co2]]\nname = "{sensor["name"]}"\nport = "{sensor["port"]}"\n'
                f'model = "{sensor["model"]}"\n'
            )
        if "counter" in occupancy:
            outer, inner = (occupancy["counter"][beam]["pin"] for beam in ("outer", "inner"))
            text += (
                f"\n[occupancy.counter]\nouter = {{ pin = {outer} }}\ninner = {{ pin = {inner} }}\n"
            )
    path.write_text(text)
    return Door(path, load_edge_config(path), hub_key, co2)


def anna_list(version: int = 1) -> AccessList:
    return site_acl({ANNA: "anna"}, version=version)
