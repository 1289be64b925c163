"""The hub's settings: one object for every ``hafen hub`` command, in three layers.

Each layer overrides the one before it:

1. a TOML file (``docs/hub.example.toml`` shows every key): ``--config/-c FILE``, else the file
   that ``$HAFEN_HUB_CONFIG`` names, else ``/etc/hafen/hub.toml`` if it exists, else none;
2. environment variables ``HAFEN_HUB__<SECTION>__<KEY>``, one ``__`` per level of the file's
   nesting: ``HAFEN_HUB__STORE__URL``, ``HAFEN_HUB__INGEST__INFLUX__URL``;
3. the commands' flags (``--db``, ``--broker HOST:PORT``, ``--key`` ...).

Each layer is validated on its own by the loader the edge's config uses, so an error names the
file's key, the variable or the flag it came from (every bad one of that layer), and an unknown
key gets a did-you-mean.

Secrets are never values here, only the files that hold them (``*_file``): the config may be
read by whoever looks after the hub, a secret file only by the hub's user. A password in
``store.url`` is refused in the file (use ``store.password_file``); from the environment or
``--db`` it is taken as before, and never printed. Secret files are read when a command needs
them (``check_files`` reads them all, for ``hafen hub check-config``), so ``hafen hub report``
run by an administrator does not need to read the signing key.

Loading imports no FastAPI and opens no database (SQLAlchemy only parses ``store.url``): the
services read these settings and only then start what they need.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from hafen.config import (
    ConfigError,
    Section,
    environment_layer,
    environment_speller,
    merge_layers,
    read_toml,
    validate_config,
)
from hub.settings_keys import CardsSettings, SigningSettings
from hub.settings_sections import (
    BROKER_SERVICES,
    MAX_BODY_BYTES,
    MIN_BODY_BYTES,
    BookingSettings,
    BrokerSettings,
    CaSettings,
    HttpSettings,
    IngestSettings,
    MailSettings,
    ReleasesSettings,
    RetentionSettings,
    StoreSettings,
)

__all__ = [
    "MAX_BODY_BYTES",
    "MIN_BODY_BYTES",
    "HubSettings",
    "config_path",
    "describe_sources",
    "load_hub_settings",
    "with_legacy_variables",
]

#: The hub's config file when neither ``--config`` nor ``$HAFEN_HUB_CONFIG`` names one.
DEFAULT_CONFIG = Path("/etc/hafen/hub.toml")
#: The environment variable that names the config file.
CONFIG_VARIABLE = "HAFEN_HUB_CONFIG"
#: Environment variables ``HAFEN_HUB__SECTION__KEY`` override the file's keys.
ENV_PREFIX = "HAFEN_HUB"

#: Variables of /etc/hafen/hub.env from before the config file, and what they are now.
LEGACY_VARIABLES = {
    "HAFEN_HUB_DB": "HAFEN_HUB__STORE__URL",
    "HAFEN_RETENTION_DAYS": "HAFEN_HUB__RETENTION__DAYS",
}

#: Validation context of the file layer: stricter than the environment or a flag.
_FILE = {"layer": "file"}


class HubSettings(Section):
    """Everything the hub's commands take, one section per part of the hub.

    ``[mail]`` is optional: without it the hub sends no mail (its password a file, like
    every secret)."""

    store: StoreSettings = StoreSettings()
    broker: BrokerSettings = BrokerSettings()
    ca: CaSettings = CaSettings()
    signing: SigningSettings = SigningSettings()
    cards: CardsSettings = CardsSettings()
    http: HttpSettings = HttpSettings()
    ingest: IngestSettings = IngestSettings()
    retention: RetentionSettings = RetentionSettings()
    mail: MailSettings | None = None
    booking: BookingSettings = BookingSettings()
    releases: ReleasesSettings = ReleasesSettings()

    def check_files(self) -> list[str]:
        """Read every secret file that the commands would read; one line per problem, naming
        the key. A file that nothing would read (the InfluxDB token without an InfluxDB URL,
        the store's password file for a URL with its own password) is not a problem."""
        problems = []
        checks: list[Callable[[], object]] = [
            self.signing.key,
            self.cards.key,
            self.ca.check,
            self.booking.places,
        ]
        checks += [
            functools.partial(self.broker.login, service)
            for service in BROKER_SERVICES
            if getattr(self.broker, service) is not None
        ]
        if self.ingest.influx.url is not None:
            checks.append(self.ingest.influx.token)
        if self.store.reads_password_file():
            checks.append(self.store.sqlalchemy_url)
        if self.mail is not None:
            checks.append(self.mail.check)
        if self.signing.release_key_file is not None:
            checks.append(self.signing.release_key)
        for check in checks:
            try:
                check()
            except ConfigError as exc:
                problems.append(str(exc))
        return problems

    def summary(self) -> str:
        """One line for ``check-config``: where things are, no secret."""
        mail = f", mail {self.mail.shown()}" if self.mail is not None else ""
        return (
            f"store {self.store.shown()}, broker {self.broker.shown()},"
            f" http {self.http.host}:{self.http.port},"
            f" signing key {self.signing.key_file or 'none'},"
            f" card key {self.cards.hash_key_file or 'none'}{mail}"
        )


def config_path(given: Path | None, environ: Mapping[str, str]) -> Path | None:
    """The config file to read: ``given``, else ``$HAFEN_HUB_CONFIG``, else the default file
    if it exists, else none (the defaults)."""
    if given is not None:
        return given
    if environ.get(CONFIG_VARIABLE):
        return Path(environ[CONFIG_VARIABLE])
    return DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None


#: A command's flags: a key's dotted path -> (the flag's spelling, its value; None or "": unset).
Flags = Mapping[str, tuple[str, Any]]


def with_legacy_variables(
    environ: Mapping[str, str],
) -> tuple[dict[str, str], list[str], dict[str, str]]:
    """``environ`` with each old variable that is set read as its new name (unless the new one
    is set too); a deprecation warning for each; and the new names read from old ones (new ->
    old), so that an error names the variable the user set."""
    updated, warnings, renamed = dict(environ), [], {}
    for old, new in LEGACY_VARIABLES.items():
        if environ.get(old, "") == "":
            continue
        if environ.get(new, "") == "":
            warnings.append(f"{old} is deprecated: set {new}, or the key in the config file")
            updated[new], renamed[new] = environ[old], old
        else:
            warnings.append(f"{old} is deprecated and ignored: {new} is set")
    return updated, warnings, renamed


def load_hub_settings(
    path: Path | None,
    environ: Mapping[str, str],
    flags: Flags | None = None,
    renamed: Mapping[str, str] | None = None,
) -> HubSettings:
    """The file at ``path`` (none: defaults), under the environment's ``HAFEN_HUB__*``
    variables, under the ``flags`` that were given; a ConfigError names every bad key."""
    file_layer = read_toml(path) if path is not None else {}
    validate_config(file_layer, HubSettings, source=str(path), context=_FILE)
    env_layer = environment_layer(environ, ENV_PREFIX)
    spell_variable = environment_speller(ENV_PREFIX)

    def spell(path: Sequence[str]) -> str:
        name = spell_variable(path)
        return (renamed or {}).get(name, name)  # as the user wrote it: maybe an old name

    validate_config(env_layer, HubSettings, source="environment", spell=spell)
    flag_layer, spelling = _flag_layer(flags or {})
    validate_config(
        flag_layer,
        HubSettings,
        source="command line",
        spell=lambda key: spelling.get(tuple(key), ".".join(key)),
    )
    return validate_config(
        merge_layers(file_layer, env_layer, flag_layer), HubSettings, source="hub settings"
    )


def _flag_layer(flags: Flags) -> tuple[dict, dict[tuple[str, ...], str]]:
    layer: dict = {}
    spelling: dict[tuple[str, ...], str] = {}
    for dotted, (flag, value) in flags.items():
        if value is None or value == "":  # unset; `--db ""` meant the default before, too
            continue
        *sections, key = dotted.split(".")
        table = layer
        for part in sections:
            table = table.setdefault(part, {})
        table[key] = value
        spelling[tuple(dotted.split("."))] = flag
    return layer, spelling


def describe_sources(path: Path | None, environ: Mapping[str, str]) -> str:
    """Where the settings come from, for a message: the file and any variables over it."""
    names = _variables(environ)
    where = str(path) if path is not None else "defaults (no config file)"
    if names:
        where += f" + {', '.join(names)}"
    return where


def _variables(environ: Mapping[str, str]) -> Sequence[str]:
    start = ENV_PREFIX + "__"
    return sorted(
        n
        for n, v in environ.items()
        if (n.upper().startswith(start) or n in LEGACY_VARIABLES) and v != ""
    )
