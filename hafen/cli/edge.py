"""``hafen edge ...``: run the door agent, check its config, load access lists, tap test cards.

Every import of edge and sim happens inside the commands, so ``hafen --help`` works on a
core-only install (no nfcpy, gpiozero or paho).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from hafen.cli.extras import require_extra

if TYPE_CHECKING:
    from edge.agent.config import EdgeConfig

app = typer.Typer(no_args_is_help=True, help="The door agent on a space's Raspberry Pi.")


#: Commands that need only the core: a technician checks a config or loads a list anywhere.
CORE_COMMANDS = frozenset({"check-config", "load-acl"})


@app.callback()
def _needs_edge_extra(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand not in CORE_COMMANDS:
        require_extra(f"hafen edge {ctx.invoked_subcommand}", "edge")


ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="Edge config file (TOML).")]
EXIT_INVALID = 2


def _fail(message: str, code: int = EXIT_INVALID) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


def _load(config: Path) -> EdgeConfig:
    from edge.agent.config import load_edge_config
    from hafen.config import ConfigError

    try:
        return load_edge_config(config)
    except ConfigError as exc:
        raise _fail(str(exc)) from None


@app.command("check-config")
def check_config(config: Annotated[Path, typer.Argument(help="Edge config file (TOML).")]) -> None:
    """Validate a config file: exit 0 if it is good, 2 with every problem named if not.

    A good config may still do less than its writer meant (a key no longer used, a room's CO2
    not counted): each such note is a warning on stderr, and the exit stays 0."""
    cfg = _load(config)
    typer.echo(f"{config}: ok (site {cfg.site.id}, device {cfg.device.id})")
    for note in cfg.occupancy.notes() if cfg.occupancy else ():
        typer.echo(f"{config}: warning: {note}", err=True)


@app.command("load-acl")
def load_acl(
    acl_file: Annotated[Path, typer.Argument(help="Access list (JSON).")],
    config: ConfigOption,
) -> None:
    """Apply an access list from a file to the local store, atomically."""
    cfg = _load(config)
    count, version = _apply_acl_file(cfg, acl_file)
    typer.echo(f"applied access list version {version}: {count} cards")


def _apply_acl_file(cfg: EdgeConfig, acl_file: Path) -> tuple[int, int]:
    from zoneinfo import ZoneInfo

    from edge.agent.access_list import AccessListRefused, apply_snapshot
    from edge.agent.store import EdgeStore
    from edge.agent.store_check import check_store
    from hafen.acl import AccessList
    from hafen.config import ConfigError, validate_config

    try:
        raw = json.loads(acl_file.read_text(encoding="utf-8"))
        acl = validate_config(raw, AccessList, source=str(acl_file))
    except (OSError, ValueError, ConfigError) as exc:
        raise _fail(
            f"{acl_file}: {exc}" if not isinstance(exc, ConfigError) else str(exc)
        ) from None
    damage = check_store(cfg.store.path)
    if damage is not None:
        raise _fail(
            f"{cfg.store.path}: the store is damaged ({damage}); start the agent"
            " (`hafen edge run`), which moves it aside and starts a fresh one, then load again",
            code=1,
        )
    store = EdgeStore(cfg.store.path, cfg.store.synchronous)
    try:
        count = apply_snapshot(
            store, acl, cfg.site.id, ZoneInfo(cfg.site.timezone), cfg.cards.key()
        )
    except AccessListRefused as exc:
        raise _fail(f"{acl_file}: refused: {exc}", code=1) from None
    finally:
        store.close()
    return count, acl.version


@app.command()
def tap(
    uid: Annotated[str, typer.Argument(help="Card UID in hex, e.g. 04A1B2C3D4E5F6.")],
    reader: Annotated[str, typer.Option(help="nfcpy UDP reader path.")] = "udp:127.0.0.1:54321",
    hold: Annotated[float, typer.Option(help="Seconds to leave the card on the reader.")] = 0.5,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the reader.")] = 5.0,
) -> None:
    """Hold an emulated card on a simulated (UDP) reader, as a member would."""
    from hafen.cards import InvalidUid, parse_uid
    from sim.card_emulator import EmulatedCard

    try:
        uid_bytes = parse_uid(uid)
        read_at = EmulatedCard(reader).present(uid_bytes, hold=hold, timeout=timeout)
    except (InvalidUid, ValueError, OSError) as exc:
        raise _fail(f"tap: {exc}") from None
    if read_at is None:
        raise _fail(f"tap: no reader polled {reader} within {timeout:g} s", code=1)
    typer.echo("card read by the reader")


@app.command("read-co2")
def read_co2(
    port: Annotated[str, typer.Option(help="Serial port, e.g. /dev/serial0 or /dev/ttyUSB0.")],
    model: Annotated[str, typer.Option(help="Sensor model: mhz19b or s8.")],
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the reply.")] = 1.0,
) -> None:
    """Read a CO2 sensor once and print its ppm (for technicians setting up a site)."""
    from edge.drivers.co2 import Co2Fault, Co2Sensor, Model

    try:
        sensor = Co2Sensor(port, Model(model), timeout=timeout)
    except ValueError:
        raise _fail(f"read-co2: --model is one of {', '.join(m.value for m in Model)}") from None
    try:
        with sensor:
            ppm = sensor.read()
    except Co2Fault as exc:
        raise _fail(f"read-co2: {exc.kind}: {exc}", code=1) from None
    typer.echo(f"{ppm} ppm")


#: Exit statuses of ``hafen edge selftest``: a check failed; it could not start (the agent
#: drives the door, or it runs as another user than the agent's). 3 is a missing extra.
EXIT_CHECK_FAILED = 1
EXIT_CANNOT_START = 4


@app.command()
def selftest(
    config: ConfigOption,
    strike: Annotated[
        bool, typer.Option("--strike/--no-strike", help="Pulse the strike: unlocks for 1 s.")
    ] = True,
    card: Annotated[
        bool, typer.Option("--card/--no-card", help="Wait for a card on the reader.")
    ] = True,
    wait: Annotated[
        float, typer.Option(min=0, max=600, help="Seconds to wait for the exit button, a card.")
    ] = 10.0,
    interactive: Annotated[
        bool | None,
        typer.Option(
            "--interactive/--no-interactive",
            help="Ask for an exit-button press (default: when run at a terminal).",
        ),
    ] = None,
) -> None:
    """Test the door on site with the agent stopped: strike, LED, buzzer, contact, exit button,
    a card, PIRs, CO2 sensors, the broker and the access list. Run it as the agent's user.
    Exit 1 if a check fails, 4 if it cannot start (the agent runs, or another user runs it).
    The result reaches the hub's fleet page when the agent runs again."""
    from edge.agent.door_claim import DoorInUse
    from edge.selftest.results import table
    from edge.selftest.run import NotTheAgentsUser, SelfTestOptions, run_selftest

    cfg = _load(config)
    options = SelfTestOptions(
        strike=strike,
        card=card,
        wait=wait,
        interactive=sys.stdin.isatty() if interactive is None else interactive,
    )
    try:
        report = run_selftest(cfg, options, typer.echo)
    except DoorInUse as exc:
        raise _fail(
            f"selftest: {exc}. Stop it first (sudo systemctl stop hafen-edge), then start it"
            " again after the self-test (sudo systemctl start hafen-edge).",
            code=EXIT_CANNOT_START,
        ) from None
    except NotTheAgentsUser as exc:
        raise _fail(f"selftest: {exc}", code=EXIT_CANNOT_START) from None
    typer.echo(table(report.results))
    typer.echo(report.note)
    if not report.passed:
        raise typer.Exit(EXIT_CHECK_FAILED)


@app.command()
def run(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="Edge config.")] = None,
    simulate: Annotated[bool, typer.Option(help="Mock pins and nfcpy's UDP reader.")] = False,
    pin_log: Annotated[Path | None, typer.Option(help="With --simulate: log pin changes.")] = None,
    walk_through: Annotated[
        bool, typer.Option(help="With --simulate: someone opens the door when it unlocks.")
    ] = True,
    people: Annotated[
        int, typer.Option(min=0, max=40, help="With --simulate: members who come and go.")
    ] = 12,
    speed: Annotated[
        float, typer.Option(min=1, max=3600, help="With --simulate: how much faster days pass.")
    ] = 60.0,
    take_over: Annotated[
        int | None,
        typer.Option(hidden=True, min=3, help="The socket of an update's hand-over (internal)."),
    ] = None,
) -> None:
    """Run the door agent until stopped (SIGTERM or Ctrl-C)."""
    logging.basicConfig(
        level=os.environ.get("HAFEN_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    cfg = _load(config) if config else None
    if simulate:
        from sim.edge_site import run_simulated

        run_simulated(
            cfg,
            pin_log=pin_log,
            walk_through=walk_through,
            people=people,
            speed=speed,
            take_over=take_over,
        )
    elif cfg is None:
        raise _fail("run: give --config FILE, or --simulate to try a simulated door")
    else:
        from edge.agent.runner import run_agent

        run_agent(cfg, take_over=take_over)


@app.command()
def releases(config: ConfigOption) -> None:
    """The releases on this door, which runs, and the update in hand (``[updates]``)."""
    from edge.updater.job import JOB_FILE, JobFile
    from edge.updater.release_dirs import ReleaseDirs

    cfg = _load(config)
    if cfg.updates is None:
        raise _fail("this door takes no updates: its config has no [updates] section")
    dirs = ReleaseDirs(cfg.updates.root)
    current, previous = dirs.current(), dirs.previous()
    for version in dirs.installed():
        mark = " (current)" if version == current else " (previous)" if version == previous else ""
        typer.echo(f"{version}{mark}")
    if not dirs.installed():
        typer.echo(f"no releases in {dirs.releases}: the agent runs from an install before them")
    job = JobFile(cfg.store.path.parent / JOB_FILE).load()
    if job is None:
        typer.echo("no update in hand")
        return
    rollout = f" for rollout {job.rollout}" if job.rollout else ""
    detail = f": {job.detail}" if job.detail else ""
    typer.echo(f"update to {job.version} from {job.from_version}{rollout}: {job.phase}{detail}")
