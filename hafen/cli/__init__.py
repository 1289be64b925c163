"""The ``hafen`` command: one entry point with a sub-command per component.

This package sits on top of every layer (docs/architecture.md): its modules import ``edge``,
``hub`` and ``sim`` only inside the commands, so ``hafen --help`` and ``hafen version`` work on a
core-only install, and a command whose component is missing names the extra to install.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hafen import __version__
from hafen.cli.edge import app as edge_app
from hafen.cli.extras import require_extra
from hafen.cli.hub import app as hub_app
from hafen.cli.provision import app as provision_app

app = typer.Typer(
    no_args_is_help=True,
    # The options' help names config keys in brackets ([http.host]), which rich would take
    # for markup and drop.
    rich_markup_mode=None,
    help="hafen: doors, occupancy and the hub for networks of small co-working spaces.",
)
app.add_typer(edge_app, name="edge")
app.add_typer(hub_app, name="hub")
app.add_typer(provision_app, name="provision")


@app.command()
def version() -> None:
    """Print the installed version."""
    typer.echo(__version__)


@app.command()
def demo(
    sites: Annotated[int, typer.Option(min=1, max=20, help="Simulated sites.")] = 5,
    people: Annotated[int, typer.Option(min=1, max=40, help="Members per site.")] = 12,
    speed: Annotated[
        float, typer.Option(min=1, max=3600, help="How many times faster the days pass.")
    ] = 60.0,
    host: Annotated[str, typer.Option(help="Address the hub's API listens on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="The hub's HTTP port.")] = 8080,
    state_dir: Annotated[
        Path | None,
        typer.Option(help="Keep the network's state here (default: a temporary directory)."),
    ] = None,
) -> None:
    """Run a whole simulated network: broker, hub, dashboard and sites whose members come
    and go; no hardware needed. Ctrl-C stops it."""
    require_extra("hafen demo", "demo")
    from sim.demo import DemoError, DemoOptions, run_demo

    options = DemoOptions(sites, people, speed, host, port, state_dir)
    try:
        code = run_demo(options)
    except DemoError as exc:
        typer.echo(f"demo: {exc}", err=True)
        raise typer.Exit(1) from None
    raise typer.Exit(code)
