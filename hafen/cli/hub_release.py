"""``hafen hub release ...``: the edge software releases the hub holds (issue 17).

A release is a wheelhouse built off the Pi (``pip wheel --require-hashes -r requirements.lock
hafen==VERSION -w DIR``); ``add`` signs its manifest with ``[signing] release_key_file`` and
keeps its wheels under ``[releases] directory``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hafen.cli.hub_settings import ConfigOption, DbOption, connect, fail, load_settings, read_secret

app = typer.Typer(no_args_is_help=True, help="Edge software releases: add and list them.")


@app.command("add")
def add_command(
    wheelhouse: Annotated[
        Path, typer.Argument(help="The directory of wheels: hafen's and its dependencies'.")
    ],
    version: Annotated[str, typer.Option(help="The release's version (PEP 440), hafen's own.")],
    rollback_from: Annotated[
        str | None,
        typer.Option(help="Make it a rollback of this (newer) version, installable over it only."),
    ] = None,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Sign a release's manifest with the release key and keep its wheels for the doors."""
    from hafen.config import ConfigError
    from hub.services.errors import ServiceError
    from hub.services.releases import add_release

    settings = load_settings(config, {"store.url": ("--db", db)})
    try:
        key = read_secret(settings.signing.release_key)
        directory = settings.releases.require_directory()
    except ConfigError as exc:
        raise fail(str(exc)) from None
    try:
        added = add_release(connect(settings), directory, wheelhouse, version, key, rollback_from)
    except ServiceError as exc:
        raise fail(f"release {version} not added: {exc}") from None
    kind = f" (a rollback from {added.rollback_from})" if added.rollback_from else ""
    typer.echo(
        f"release {added.version}{kind}: {added.files} files, {added.bytes:,} bytes, signed and"
        f" kept in {directory / added.version}"
    )


@app.command("list")
def list_command(db: DbOption = None, config: ConfigOption = None) -> None:
    """The releases the hub holds, newest first."""
    from hub.services.releases import list_releases

    for release in list_releases(connect(load_settings(config, {"store.url": ("--db", db)}))):
        kind = f"  rollback from {release.rollback_from}" if release.rollback_from else ""
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
