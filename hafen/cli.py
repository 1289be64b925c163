"""The ``hafen`` command: one entry point with a sub-command per component."""

from __future__ import annotations

import typer

from edge.cli import app as edge_app
from hafen import __version__
from hub.cli import app as hub_app

app = typer.Typer(
    no_args_is_help=True,
    help="hafen: doors, occupancy and the hub for networks of small co-working spaces.",
)
app.add_typer(edge_app, name="edge")
app.add_typer(hub_app, name="hub")


@app.command()
def version() -> None:
    """Print the installed version."""
    typer.echo(__version__)


@app.command()
def demo() -> None:
    """Run a simulated space: a door you can tap cards at, no hardware needed."""
    from hafen.demo import run_demo

    run_demo()
