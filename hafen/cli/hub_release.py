"""``hafen hub release ...``: the edge software releases the hub holds (issue 17).

A release is a wheelhouse built off the Pi (``pip wheel --require-hashes -r requirements.lock
hafen==VERSION -w DIR``); ``add`` signs its manifest with ``[signing] release_key_file`` and
keeps its wheels under ``[releases] directory``. Doors never install an older version than
they run, except a signed rollback from exactly the version they run: ``rollback`` makes one
from a release the hub holds, for ``hafen hub rollout start VERSION --rollback``.
"""

from __future__ import annotations

import getpass
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from hafen.cli.hub_settings import ConfigOption, DbOption, connect, fail, load_settings, read_secret

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from hub.settings import HubSettings

app = typer.Typer(
    no_args_is_help=True, help="Edge software releases: add, roll back to and list them."
)


@app.command("add")
def add_command(
    wheelhouse: Annotated[
        Path, typer.Argument(help="The directory of wheels: hafen's and its dependencies'.")
    ],
    version: Annotated[str, typer.Option(help="The release's version (PEP 440), hafen's own.")],
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Sign a release's manifest with the release key and keep its wheels for the doors."""
    from hub.services.errors import ServiceError
    from hub.services.releases import add_release

    settings = load_settings(config, {"store.url": ("--db", db)})
    key, directory = _signing(settings)
    try:
        added = add_release(connect(settings), directory, wheelhouse, version, key)
    except ServiceError as exc:
        raise fail(f"release {version} not added: {exc}") from None
    typer.echo(
        f"release {added.version}: {added.files} files, {added.bytes:,} bytes, signed and"
        f" kept in {directory / added.version}"
    )


@app.command("rollback")
def rollback_command(
    version: Annotated[
        str, typer.Argument(help="The release to go back to; the hub must hold it.")
    ],
    rollback_from: Annotated[
        str,
        typer.Option(
            "--from", help="The newer version the doors run, the only one it installs over."
        ),
    ],
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Sign a held release again as the rollback from a newer version (same wheels)."""
    from hub.services.errors import ServiceError
    from hub.services.releases import add_rollback

    settings = load_settings(config, {"store.url": ("--db", db)})
    key, directory = _signing(settings)
    who = f"cli:{getpass.getuser()}"
    try:
        made, new = add_rollback(connect(settings), directory, version, rollback_from, key, who)
    except ServiceError as exc:
        why = re.sub(r"^from:", "--from:", str(exc))  # the service's field as the option
        raise fail(f"rollback to {version} not made: {why}") from None
    said = (
        f"release {made.version}'s manifest signed again, for doors on {made.rollback_from} only"
        if new
        else f"held already (made {made.created_at:%Y-%m-%d %H:%M} UTC by {made.created_by})"
    )
    typer.echo(
        f"rollback to {made.version} from {made.rollback_from}: {said};"
        f" roll it out with `hafen hub rollout start {made.version} --rollback`"
    )


@app.command("list")
def list_command(db: DbOption = None, config: ConfigOption = None) -> None:
    """The releases the hub holds, newest first, with the rollbacks to each."""
    from hub.services.releases import list_releases

    for release in list_releases(connect(load_settings(config, {"store.url": ("--db", db)}))):
        backs = ", ".join(release.rollbacks)
        kind = f"\trollbacks from {backs}" if backs else ""
        typer.echo(
            f"{release.version}\t{release.files} files\t{release.bytes:,} bytes"
            f"\tadded {release.created_at:%Y-%m-%d %H:%M} UTC{kind}"
        )


@app.command("key")
def key_command(config: ConfigOption = None) -> None:
    """Print the release key's public half, for the doors' ``[updates] release_keys``."""
    from hafen.signing import public_key_text

    settings = load_settings(config, {})
    typer.echo(public_key_text(read_secret(settings.signing.release_key)))


def _signing(settings: HubSettings) -> tuple[Ed25519PrivateKey, Path]:
    """The release key and the releases' directory, both needed to sign one; a command
    without them ends saying which setting is missing."""
    from hafen.config import ConfigError

    try:
        return read_secret(settings.signing.release_key), settings.releases.require_directory()
    except ConfigError as exc:
        raise fail(str(exc)) from None
