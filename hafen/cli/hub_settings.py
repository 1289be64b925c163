"""What the ``hafen hub`` commands share: their options, and reading the hub's settings.

The settings are a TOML file (``--config``, ``$HAFEN_HUB_CONFIG`` or ``/etc/hafen/hub.toml``),
then ``HAFEN_HUB__*`` environment variables, then the command's flags, each over the one
before (hub/settings.py). A problem with any of them ends the command with a message naming
the key, and exit 2.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

if TYPE_CHECKING:  # the hub's libraries load inside the commands, on a hub install only
    from sqlalchemy.engine import Engine

    from hub.settings import HubSettings

T = TypeVar("T")

KeyOption = Annotated[Path, typer.Option("--key", help="The hub's Ed25519 signing key (PEM).")]
ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="Hub config (TOML); default $HAFEN_HUB_CONFIG, else /etc/hafen/hub.toml if it exists.",
        show_default=False,
    ),
]
DbOption = Annotated[
    str | None, typer.Option(help="SQLAlchemy URL [store.url]; default a SQLite file.")
]
BrokerOption = Annotated[
    str | None,
    typer.Option(help="HOST:PORT of the broker [broker.host/port]; default localhost:1883."),
]
EXIT_INVALID = 2


def fail(message: str, code: int = EXIT_INVALID) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


def broker_flags(value: str | None) -> dict[str, tuple[str, object]]:
    """``--broker HOST:PORT`` as the two keys it sets."""
    if value is None:
        return {}
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise typer.BadParameter("write the broker as HOST:PORT, e.g. localhost:1883")
    return {"broker.host": ("--broker", host), "broker.port": ("--broker", int(port))}


def load_settings(config: Path | None, flags: dict[str, tuple[str, object]]) -> HubSettings:
    """The hub's settings: the config file, under the environment, under the given flags."""
    from hafen.config import ConfigError
    from hub.settings import config_path, load_hub_settings, with_legacy_variables

    environ, warnings, renamed = with_legacy_variables(os.environ)
    for warning in warnings:
        typer.echo(f"warning: {warning}", err=True)
    try:
        return load_hub_settings(config_path(config, environ), environ, flags, renamed)
    except ConfigError as exc:
        raise fail(str(exc)) from None


def read_secret(read: Callable[[], T]) -> T:
    """Call ``read`` (a settings method that reads a secret file); a failure ends the command."""
    from hafen.config import ConfigError

    try:
        return read()
    except ConfigError as exc:
        raise fail(str(exc)) from None


def connect(settings: HubSettings) -> Engine:
    """Open the store the settings name."""
    from hub import db as hubdb

    return hubdb.connect(read_secret(settings.store.sqlalchemy_url))


def shown(url: str) -> str:
    from hafen.config import mask_credentials

    return mask_credentials(url)


def configure_logging() -> None:
    logging.basicConfig(
        level=os.environ.get("HAFEN_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


def warn_if_rollups_missing(engine: Engine) -> None:
    """An upgraded store's history is not in the roll-ups yet: say how to fill them."""
    from hub.rollups import missing

    if missing(engine):
        typer.echo(
            "warning: this store has events that no report counts yet (it was upgraded from"
            " before roll-ups); stop ingest and run `hafen hub rebuild-rollups`",
            err=True,
        )
