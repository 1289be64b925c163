"""The edge agent's config file: one section per component, validated when it is loaded.

The hardware's sections are the drivers' own settings (``edge.drivers.*_settings``): this module
composes them with the agent's own sections, and checks across sections that every GPIO pin has
one user (``edge.drivers.pins.PinRegistry``). The ``[occupancy]`` section has a module of its own
(``edge.agent.occupancy_config``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator

from edge.agent.occupancy_config import OccupancyConfig as OccupancyConfig  # its old home
from edge.drivers.door_settings import DoorHardwareSettings
from edge.drivers.nfc_reader_settings import NfcReaderSettings
from edge.drivers.pins import PinClash, PinRegistry
from edge.updater.settings import UpdatesSettings
from hafen.cards import parse_card_key
from hafen.config import PublicKeyText, Section, TimeZoneName, load_toml_config
from hafen.ids import Slug

if TYPE_CHECKING:  # cryptography loads only for a door with a [hub] section
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

Seconds = Annotated[float, Field(gt=0, le=3600)]


class SiteConfig(Section):
    """The space this device belongs to."""

    id: Slug
    timezone: TimeZoneName = "Europe/Berlin"


class DeviceConfig(Section):
    """This device's identity within its site."""

    id: Slug

    @field_validator("id")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value == "acl":
            raise ValueError("'acl' is reserved for the site's access-list topic")
        return value


class StoreConfig(Section):
    """The local SQLite cache: access list and event outbox."""

    path: Path = Path("/var/lib/hafen/edge.db")
    #: "full" survives power loss (an fsync per decision); "normal" only a crash of the agent.
    synchronous: Literal["full", "normal"] = "full"


class CardsConfig(Section):
    """The network-wide key under which card UIDs are hashed (set exactly one of the two keys)."""

    hash_key: SecretStr | None = None
    hash_key_file: Path | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> CardsConfig:
        if (self.hash_key is None) == (self.hash_key_file is None):
            raise ValueError("set exactly one of hash_key and hash_key_file")
        return self

    @field_validator("hash_key")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            parse_card_key(value.get_secret_value())
        return value

    @field_validator("hash_key_file")
    @classmethod
    def _readable(cls, value: Path | None) -> Path | None:
        if value is not None:
            _read_key_file(value)
        return value

    def key(self) -> bytes:
        """Return the key bytes, reading the key file if one is configured."""
        if self.hash_key is not None:
            return parse_card_key(self.hash_key.get_secret_value())
        assert self.hash_key_file is not None
        return _read_key_file(self.hash_key_file)


def _read_key_file(path: Path) -> bytes:
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read the key file: {exc}") from None
    return parse_card_key(text)


class DoorConfig(DoorHardwareSettings):
    """The door: its hardware (strike relay, contact, exit button, signals) and how it behaves."""

    unlock_seconds: Seconds = 5.0
    held_open_seconds: Seconds = 30.0
    relock_on_close: bool = True
    #: A door opened this soon after relocking is someone who was already pushing, not forced.
    forced_grace_seconds: Annotated[float, Field(ge=0, le=30)] = 1.0


class MqttConfig(Section):
    """The link to the network's broker. Leave the section out to run a door on its own."""

    host: str = "localhost"
    port: Annotated[int, Field(ge=1, le=65535)] = 1883
    username: str | None = None
    password: SecretStr | None = None
    password_file: Path | None = None
    #: TLS: the network's CA certificate (the broker's must chain to it). With it alone the
    #: link is encrypted and the broker checked; the shipped broker also asks for the
    #: device's own certificate and key (``hafen provision enrol`` writes all three).
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    keepalive: Annotated[int, Field(ge=5, le=3600)] = 30
    #: How long the broker keeps this device's session (and queued commands) while it is away.
    session_expiry_seconds: Annotated[int, Field(ge=60)] = 7 * 24 * 3600
    reconnect_max_seconds: Seconds = 60.0
    #: Unacknowledged events handed to paho at once; paho's message ids wrap at 65,535.
    inflight_window: Annotated[int, Field(ge=1, le=60_000)] = 1000

    @model_validator(mode="after")
    def _tls_files(self) -> MqttConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("set cert_file and key_file together (the device's certificate)")
        if self.cert_file is not None and self.ca_file is None:
            raise ValueError("a client certificate needs TLS: set ca_file too")
        if self.password is not None and self.password_file is not None:
            raise ValueError("set at most one of password and password_file")
        return self

    def password_value(self) -> str | None:
        if self.password is not None:
            return self.password.get_secret_value()
        if self.password_file is not None:
            return self.password_file.read_text(encoding="utf-8").strip()
        return None


class HubConfig(Section):
    """What the device trusts from the hub: the keys that sign access lists and commands."""

    public_keys: list[PublicKeyText] = Field(min_length=1)

    def trusted(self) -> list[Ed25519PublicKey]:
        from hafen.signing import public_key_from_text

        return [public_key_from_text(text) for text in self.public_keys]


#: The sections whose parts take GPIO pins, in the order they claim them.
PIN_SECTIONS = ("door", "occupancy")


class EdgeConfig(Section):
    """The whole edge config file."""

    site: SiteConfig
    device: DeviceConfig
    store: StoreConfig = StoreConfig()
    cards: CardsConfig
    reader: NfcReaderSettings = NfcReaderSettings()
    door: DoorConfig
    mqtt: MqttConfig | None = None
    hub: HubConfig | None = None
    occupancy: OccupancyConfig | None = None
    updates: UpdatesSettings | None = None

    @model_validator(mode="after")
    def _updates_with_identity(self) -> EdgeConfig:
        if self.updates is None:
            return self
        if self.mqtt is None or self.mqtt.cert_file is None or self.mqtt.key_file is None:
            raise ValueError(
                "updates: a door downloads releases as itself: it needs [mqtt] cert_file and"
                " key_file (`hafen provision enrol` writes them)"
            )
        if self.hub is not None and set(self.updates.release_keys) & set(self.hub.public_keys):
            raise ValueError(
                "updates.release_keys: a key that signs access lists must not sign releases"
                " (`hafen hub release key` prints the release key)"
            )
        return self

    @model_validator(mode="after")
    def _hub_with_mqtt(self) -> EdgeConfig:
        if self.mqtt is not None and self.hub is None:
            raise ValueError("a device with [mqtt] needs [hub] public_keys to verify access lists")
        discovery = self.occupancy is not None and self.occupancy.home_assistant.enabled
        if discovery and self.mqtt is not None and self.mqtt.cert_file is not None:
            # The network's broker drops a device that publishes outside its own topics: the
            # door would lose its link on every connection.
            raise ValueError(
                "occupancy.home_assistant: the network's broker (a device certificate in"
                " [mqtt]) lets a door publish only its own topics; Home Assistant discovery"
                " needs a broker of the site's own"
            )
        return self

    @field_validator(*PIN_SECTIONS)
    @classmethod
    def _pins_free(
        cls, section: DoorConfig | OccupancyConfig | None, info: ValidationInfo
    ) -> DoorConfig | OccupancyConfig | None:
        """Every GPIO pin has one user: the sections' parts claim their pins in one registry, in
        the order of PIN_SECTIONS, and a clash is named in the later user's section."""
        registry = PinRegistry()
        for name in PIN_SECTIONS[: PIN_SECTIONS.index(str(info.field_name)) + 1]:
            users = section if name == info.field_name else info.data.get(name)
            if users is None:  # not configured, or invalid (and named already)
                continue
            try:
                registry.claim_all(name, users)
            except PinClash as clash:
                raise ValueError(clash.seen_from(str(info.field_name))) from None
        return section


def load_edge_config(path: Path) -> EdgeConfig:
    """Load and validate an edge config file; raises ConfigError naming every bad key."""
    return load_toml_config(path, EdgeConfig)
