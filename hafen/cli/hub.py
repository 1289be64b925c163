"""``hafen hub ...``: the hub's services: API and dashboard, ingest, retention, reports, users.

Every command but ``keygen`` reads the hub's settings (hub/settings.py): a TOML file
(``--config``, ``$HAFEN_HUB_CONFIG`` or ``/etc/hafen/hub.toml``), then ``HAFEN_HUB__*``
environment variables, then its flags, each over the one before.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from hafen.cli.extras import require_extra
from hafen.cli.hub_broker import broker_config_command, broker_setup_command
from hafen.cli.hub_ca import init_ca_command
from hafen.cli.hub_release import app as release_app
from hafen.cli.hub_rollout import app as rollout_app
from hafen.cli.hub_services import ingest_command, serve_command
from hafen.cli.hub_settings import (
    ConfigOption,
    DbOption,
    KeyOption,
    connect,
    fail,
    load_settings,
)

if TYPE_CHECKING:  # the hub's libraries load inside the commands, on a hub install only
    pass


app = typer.Typer(no_args_is_help=True, help="The hub that runs the network.")
app.command("init-ca")(init_ca_command)
app.command("broker-config")(broker_config_command)
app.command("broker-setup")(broker_setup_command)
app.command("ingest")(ingest_command)
app.command("serve")(serve_command)
app.add_typer(release_app, name="release")
app.add_typer(rollout_app, name="rollout")


#: Commands that need only the core (cryptography): the signing key is made anywhere.
CORE_COMMANDS = frozenset({"keygen"})


@app.callback()
def _needs_hub_extra(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand not in CORE_COMMANDS:
        require_extra(f"hafen hub {ctx.invoked_subcommand}", "hub")


@app.command("check-config")
def check_config(
    config: Annotated[
        Path | None,
        typer.Argument(
            help="Hub config (TOML); default $HAFEN_HUB_CONFIG, else /etc/hafen/hub.toml.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Validate the hub's config: exit 0 if it is good, 2 with every problem named if not.

    Checks the file, the HAFEN_HUB__* variables over it, and the secret files they name."""
    from hub.settings import config_path, describe_sources

    path = config_path(config, os.environ)
    settings = load_settings(path, {})
    sources = describe_sources(path, os.environ)
    problems = settings.check_files()
    if problems:
        lines = "\n".join(f"  {problem}" for problem in problems)
        raise fail(f"{sources}: invalid config\n{lines}")
    typer.echo(f"{sources}: ok ({settings.summary()})")


@app.command()
def keygen(
    key: KeyOption = Path("/etc/hafen/hub-signing.pem"),
) -> None:
    """Create the hub's signing key and print the public key that devices trust."""
    from hafen.signing import public_key_text
    from hub.keys import generate_key

    try:
        private = generate_key(key)
    except FileExistsError:
        typer.echo(f"{key} exists already; refusing to replace a signing key", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"wrote {key}\npublic key (for [hub] public_keys of each device):")
    typer.echo(public_key_text(private))


@app.command("create-user")
def create_user_command(
    username: Annotated[str, typer.Argument(help="The new user's sign-in name.")],
    role: Annotated[str, typer.Option(help="network_admin, site_operator or technician.")],
    site: Annotated[list[str] | None, typer.Option(help="A site an operator may see.")] = None,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Add a hub user (asks for the password); the first network admin is made this way."""
    from pydantic import ValidationError

    from hub.auth import Role
    from hub.services.errors import ServiceError
    from hub.services.users import UserIn, add_user

    try:
        role_value = Role(role)
    except ValueError:
        raise typer.BadParameter(f"role is one of {', '.join(r.value for r in Role)}") from None
    settings = load_settings(config, {"store.url": ("--db", db)})
    engine = connect(settings)
    password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    try:
        user = UserIn(username=username, password=password, role=role_value, sites=site or [])
        add_user(engine, user)
    except ValidationError as exc:
        problems = (
            ": ".join(filter(None, (".".join(map(str, e["loc"])), e["msg"]))).replace(
                "Value error, ", ""
            )
            for e in exc.errors()
        )
        raise fail("create-user: " + "; ".join(problems)) from None
    except ServiceError as exc:
        raise fail(f"create-user: {exc}") from None
    typer.echo(f"user {username} ({role_value.value}) created")


@app.command()
def retention(
    days: Annotated[
        int | None,
        typer.Option(
            min=1, help="Keep door events personal this long [retention.days]; default 180."
        ),
    ] = None,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Pseudonymise door events older than the retention period (run daily by a timer)."""
    from datetime import UTC, datetime, timedelta

    from hub.privacy import pseudonymize_events

    settings = load_settings(
        config, {"retention.days": ("--days", days), "store.url": ("--db", db)}
    )
    engine = connect(settings)
    cutoff = datetime.now(UTC) - timedelta(days=settings.retention.days)
    changed = pseudonymize_events(engine, cutoff)
    typer.echo(f"pseudonymised {changed} door events from before {cutoff:%Y-%m-%d %H:%M} UTC")


@app.command()
def report(
    month: Annotated[str, typer.Argument(help="The month, YYYY-MM.")],
    site: Annotated[list[str] | None, typer.Option(help="Only this site (repeatable).")] = None,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Print the funders' monthly report as CSV (one row per site)."""
    from hub import reports

    engine = connect(load_settings(config, {"store.url": ("--db", db)}))
    try:
        rows = reports.monthly_report(engine, month, set(site) if site else None)
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    typer.echo(reports.as_csv(rows), nl=False)


@app.command("rebuild-rollups")
def rebuild_rollups(
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Rebuild the visit and occupancy roll-ups from the stored events (after an upgrade)."""
    from hub.rollups import rebuild

    decisions, devices = rebuild(connect(load_settings(config, {"store.url": ("--db", db)})))
    typer.echo(f"roll-ups rebuilt from {decisions} door decisions and {devices} devices' samples")
