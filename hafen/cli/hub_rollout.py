"""``hafen hub rollout ...``: rolling a release out to the doors (issue 17), and steering it.

``start`` fixes the doors and their stages; ``hafen hub serve`` then orders the doors stage
by stage (hub.services.rollout_driver). Whoever runs these commands holds the hub's
settings and store, so they act as a network admin, named ``cli:<their login>``.
"""

from __future__ import annotations

import getpass
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from hafen.cli.hub_settings import ConfigOption, DbOption, connect, fail, load_settings

if TYPE_CHECKING:  # the hub's libraries load inside the commands, on a hub install only
    from sqlalchemy.engine import Engine

    from hub.auth import Principal
    from hub.services.rollout_models import Rollout, RolloutDetail

app = typer.Typer(
    no_args_is_help=True,
    help="Roll a release out to the doors in stages: start, list, show, pause, resume, abort.",
)

RolloutId = Annotated[int, typer.Argument(help="The rollout's number (hafen hub rollout list).")]


def _admin() -> Principal:
    from hub.auth import Principal, Role

    name = f"cli:{getpass.getuser()}"[:64]
    return Principal(user_id=0, username=name, role=Role.NETWORK_ADMIN, sites=frozenset())


def _store(db: str | None, config: Path | None) -> Engine:
    return connect(load_settings(config, {"store.url": ("--db", db)}))


@app.command("start")
def start_command(
    version: Annotated[
        str, typer.Argument(help="The release to roll out (hafen hub release list).")
    ],
    sites: Annotated[
        str | None,
        typer.Option(help="Only the doors of these sites, comma-separated: borna,kiel."),
    ] = None,
    device: Annotated[
        list[str] | None,
        typer.Option(help="Only this door, as site/device; give it again for more."),
    ] = None,
    stages: Annotated[
        str,
        typer.Option(help="Cumulative stages: 1,10%,100% is a canary, then 10 %, then all."),
    ] = "1,10%,100%",
    max_failures: Annotated[
        int | None,
        typer.Option(help="Pause by itself past this many failures [default: 0, unless a share]."),
    ] = None,
    max_failure_share: Annotated[
        float | None,
        typer.Option(help="Pause by itself past this share of failures (0.2: a fifth)."),
    ] = None,
    deadline_minutes: Annotated[
        int, typer.Option(help="A door with no outcome this long after its order is failed.")
    ] = 30,
    rollback: Annotated[
        bool,
        typer.Option(
            "--rollback",
            help="Take doors on a newer version back to this one (each such version needs"
            " hafen hub release rollback VERSION --from NEWER first).",
        ),
    ] = False,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Start rolling a release out; `hafen hub serve` orders the doors stage by stage."""
    from pydantic import ValidationError

    from hub.services.errors import ServiceError
    from hub.services.rollout_models import RolloutIn
    from hub.services.rollouts import create_rollout
    from hub.services.sites import describe

    try:
        asked = RolloutIn(
            version=version,
            sites=[s.strip() for s in sites.split(",") if s.strip()] if sites else None,
            devices=device or None,
            stages=stages,
            max_failures=max_failures,
            max_failure_share=max_failure_share,
            deadline_minutes=deadline_minutes,
            rollback=rollback,
        )
    except ValidationError as exc:
        raise fail(f"rollout not started: {_as_options(describe(exc))}") from None
    try:
        made = create_rollout(_store(db, config), _admin(), asked)
    except ServiceError as exc:
        raise fail(f"rollout not started: {_as_options(str(exc))}") from None
    first = made.stage_list[0]
    typer.echo(
        f"rollout {made.id}: {made.version} to {made.target.describe()},"
        f" {made.device_count} devices ({made.steps.get('healthy', 0)} already on it);"
        f" stage 1 orders {first.device_count}."
        f" `hafen hub serve` sends the orders; follow it with `hafen hub rollout show {made.id}`"
    )


@app.command("list")
def list_command(db: DbOption = None, config: ConfigOption = None) -> None:
    """The rollouts, newest first."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from hub.services.rollout_reads import list_rollouts

    table = Table("id", "version", "state", "stage", "target", "devices", "healthy", "failures")
    for rollout in list_rollouts(_store(db, config), _admin()):
        table.add_row(
            str(rollout.id),
            rollout.version,
            _state(rollout),
            f"{rollout.stage}/{rollout.stage_count}",
            Text(rollout.target.describe()),
            str(rollout.device_count),
            str(rollout.steps.get("healthy", 0)),
            str(rollout.failures),
        )
    Console(width=160, markup=False, highlight=False).print(table)


@app.command("show")
def show_command(rollout: RolloutId, db: DbOption = None, config: ConfigOption = None) -> None:
    """One rollout: each stage, and each device's step with why."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from hub.services.errors import ServiceError
    from hub.services.rollout_reads import get_rollout

    try:
        shown = get_rollout(_store(db, config), _admin(), rollout)
    except ServiceError as exc:
        raise fail(f"{exc}; hafen hub rollout list shows them") from None
    # What doors said is printed as text, never as Rich markup.
    console = Console(width=160, markup=False, highlight=False)
    limits = _limits(shown)
    console.print(
        f"rollout {shown.id}: {shown.version} to {shown.target.describe()}, {_state(shown)};"
        f" stages {shown.stages}, stage {shown.stage} of {shown.stage_count}; {limits};"
        f" started by {shown.created_by} {shown.created_at:%Y-%m-%d %H:%M} UTC"
    )
    stages = Table("stage", "spec", "devices", "steps", "finished")
    for stage in shown.stage_list:
        steps = ", ".join(f"{step} {n}" for step, n in sorted(stage.steps.items()))
        stages.add_row(
            str(stage.number), stage.spec, str(stage.device_count), steps, _yes(stage.finished)
        )
    console.print(stages)
    devices = Table("device", "stage", "step", "why", "from", "since")
    for door in shown.device_list:
        since = f"{door.step_at:%Y-%m-%d %H:%M}" if door.step_at else ""
        devices.add_row(
            f"{door.site}/{door.device}",
            str(door.stage),
            door.step,
            Text(door.why),
            door.from_version or "",
            since,
        )
    console.print(devices)


@app.command("pause")
def pause_command(rollout: RolloutId, db: DbOption = None, config: ConfigOption = None) -> None:
    """Order no more doors; those ordered finish."""
    _steer("pause", rollout, db, config)


@app.command("resume")
def resume_command(rollout: RolloutId, db: DbOption = None, config: ConfigOption = None) -> None:
    """Order doors again, accepting the failures so far."""
    _steer("resume", rollout, db, config)


@app.command("abort")
def abort_command(rollout: RolloutId, db: DbOption = None, config: ConfigOption = None) -> None:
    """End it: no door is ordered again; doors mid-update finish, their reports recorded."""
    _steer("abort", rollout, db, config)


def _steer(verb: str, rollout: int, db: str | None, config: Path | None) -> None:
    from hub.services import rollouts
    from hub.services.errors import ServiceError

    action = {
        "pause": rollouts.pause_rollout,
        "resume": rollouts.resume_rollout,
        "abort": rollouts.abort_rollout,
    }[verb]
    try:
        done = action(_store(db, config), _admin(), rollout)
    except ServiceError as exc:
        raise fail(f"{exc}; hafen hub rollout show {rollout} says where it stands") from None
    typer.echo(f"rollout {done.id}: {_state(done)}")


def _state(rollout: Rollout) -> str:
    return f"{rollout.state} ({rollout.paused_reason})" if rollout.paused_reason else rollout.state


def _limits(rollout: RolloutDetail) -> str:
    parts = []
    if rollout.max_failures is not None:
        parts.append(f"pauses past {rollout.max_failures} failures")
    if rollout.max_failure_share is not None:
        parts.append(f"past {rollout.max_failure_share:.0%} failed")
    if rollout.accepted_failures:
        parts.append(f"{rollout.accepted_failures} failures accepted")
    parts.append(f"{rollout.deadline_minutes} min per device")
    return ", ".join(parts)


def _yes(value: bool) -> str:
    return "yes" if value else "no"


def _as_options(message: str) -> str:
    """A service's field names as the command's options (``devices.0:`` as ``--device:``)."""
    options = {
        "max_failure_share": "--max-failure-share",
        "max_failures": "--max-failures",
        "deadline_minutes": "--deadline-minutes",
        "devices": "--device",
        "sites": "--sites",
        "stages": "--stages",
        "version": "VERSION",
    }
    return re.sub(
        r"\b(" + "|".join(options) + r")(\.\d+)?:", lambda m: f"{options[m[1]]}:", message
    )
