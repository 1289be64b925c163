"""`hafen provision`: bring a device into the network, or take it out.

On the hub's machine (its settings, as every ``hafen hub`` command reads them):

    hafen provision device add SITE DEVICE      a one-time enrolment token, as text and QR
    hafen provision device revoke SITE DEVICE   end the device's access at once

On the Pi:

    hafen provision enrol https://hub.example.org TOKEN    (or - to read it from stdin)
"""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from hafen.cli.extras import require_extra
from hafen.cli.hub_settings import ConfigOption, DbOption, connect, fail, load_settings, read_secret

if TYPE_CHECKING:
    from hub.auth import Principal
    from hub.device_identity import DeviceAuthority
    from hub.settings import HubSettings

app = typer.Typer(no_args_is_help=True, help="Enrol devices into the network, or revoke them.")
device_app = typer.Typer(no_args_is_help=True, help="Devices at the hub: add (enrol), revoke.")
app.add_typer(device_app, name="device")

Site = Annotated[str, typer.Argument(help="The site's id.")]
Device = Annotated[str, typer.Argument(help="The device's id at the site (front-door).")]
#: Where the hub's dashboard and API are, for the command a technician types on the Pi.
HubUrl = Annotated[
    str | None,
    typer.Option(help="The hub's URL as the Pi reaches it; default: [http] public_url."),
]


@device_app.command("add")
def add_device(
    site: Site,
    device: Device,
    kind: Annotated[str, typer.Option(help="door or sensor.")] = "door",
    valid_minutes: Annotated[
        int, typer.Option(min=5, max=7 * 24 * 60, help="How long the token is valid.")
    ] = 60,
    hub_url: HubUrl = None,
    qr: Annotated[bool, typer.Option(help="Print the token as a QR code too.")] = True,
    config: ConfigOption = None,
    db: DbOption = None,
) -> None:
    """Register a device and print its one-time enrolment token (text and QR code)."""
    require_extra("hafen provision device add", "hub")
    from datetime import timedelta

    from hub.services import enrolment
    from hub.services.errors import ServiceError

    settings = load_settings(config, {"store.url": ("--db", db)})
    lifetime = timedelta(minutes=valid_minutes)
    try:
        ticket = enrolment.start(connect(settings), _operator(), site, device, kind, lifetime)
    except ServiceError as exc:
        raise fail(str(exc), 1) from None
    url = hub_url or settings.http.public_url or "https://HUB"
    command = f"hafen provision enrol {url} {ticket.token}"
    until = f"{ticket.expires_at:%Y-%m-%d %H:%M} UTC"
    typer.echo(f"device {site}/{device}: a one-time enrolment token, valid until {until}.")
    typer.echo("On the device, as root:")
    typer.echo(f"\n    {command}\n")
    if qr:
        import segno

        segno.make(command, error="m").terminal(compact=True)


@device_app.command("revoke")
def revoke_device(site: Site, device: Device, config: ConfigOption = None) -> None:
    """End a device's access at once: its client at the broker, its certificates."""
    require_extra("hafen provision device revoke", "hub")
    from hub.services import revocation
    from hub.services.errors import ServiceError

    settings = load_settings(config, {})
    engine = connect(settings)
    authority = _authority(settings)
    try:
        revoked = revocation.revoke(engine, authority, _operator(), site, device)
    except ServiceError as exc:
        raise fail(str(exc), 1) from None
    typer.echo(
        f"device {site}/{device}: revoked at {revoked.revoked_at:%Y-%m-%d %H:%M} UTC;"
        f" {revoked.certificates} certificate(s) on the revocation list"
    )
    if not revoked.broker_done:
        typer.echo(
            f"the broker was not reached ({revoked.broker_error}): run this again to drop the"
            " device's client there",
            err=True,
        )
        raise typer.Exit(1)
    typer.echo("its client at the broker is gone and its connection dropped")


@app.command("enrol")
def enrol_command(
    hub: Annotated[str, typer.Argument(help="The hub's URL, https://hub.example.org.")],
    token: Annotated[
        str,
        typer.Argument(
            help="The one-time token from `device add`; - reads it from standard input (one"
            " line), which keeps it out of `ps` and the shell's history."
        ),
    ],
    etc: Annotated[Path, typer.Option(help="Where the config and keys go.")] = Path("/etc/hafen"),
    state_dir: Annotated[Path, typer.Option(help="The agent's state.")] = Path("/var/lib/hafen"),
    hardware: Annotated[
        Path | None,
        typer.Option(help="A TOML file with this Pi's wiring: reader, door, occupancy sections."),
    ] = None,
    owner: Annotated[
        str | None,
        typer.Option(
            help="The agent's user: it gets tls/ and the state directory, and reads the config,"
            " card key and password (root's, its group's to read); default: hafen, as root."
        ),
    ] = None,
    hub_ca: Annotated[
        Path | None,
        typer.Option(
            help="A PEM file of the CA(s) to trust for the hub's HTTPS certificate (a hub with"
            " a certificate from a CA of its own); default: the system's CAs."
        ),
    ] = None,
    allow_http: Annotated[
        bool, typer.Option(help="Allow a plain http:// hub that is not this machine.")
    ] = False,
) -> None:
    """Enrol this device: make its key here, get its certificate and settings from the hub,
    and write its checked config (root writes, the agent reads; its key is its own)."""
    require_extra("hafen provision enrol", "edge")
    from edge.agent.enrolment import DevicePaths, EnrolmentFailed, enrol

    paths = DevicePaths(etc, state_dir)
    token = _token_from(token)
    try:
        config, written = enrol(
            hub, token, paths, hardware, owner or _agent_user(), allow_http, hub_ca
        )
    except EnrolmentFailed as exc:
        raise fail(f"enrolment failed: {exc}", 1) from None
    except OSError as exc:
        raise fail(f"enrolment could not write its files: {exc}", 1) from None
    mqtt = config.mqtt
    assert mqtt is not None
    typer.echo(f"enrolled as {config.site.id}/{config.device.id}")
    for path in written:
        typer.echo(f"  wrote {path}")
    typer.echo(f"broker: {mqtt.host}:{mqtt.port} over TLS, as {mqtt.username}")
    typer.echo(f"next: sudo -u hafen hafen edge selftest -c {paths.config}")
    typer.echo("then: sudo systemctl restart hafen-edge")


def _token_from(argument: str) -> str:
    """The token as given, or for ``-`` the first line of standard input: a token on the
    command line shows in `ps` and stays in the shell's history."""
    if argument != "-":
        return argument
    if sys.stdin.isatty():  # typed or pasted at a terminal: not shown on the screen either
        import getpass

        line = getpass.getpass("enrolment token: ").strip()
    else:
        line = sys.stdin.readline().strip()
    if not line:
        raise fail("enrolment failed: no token on standard input (one line)", 1)
    return line


def _agent_user() -> str | None:
    """The edge agent's user (provisioning/install.sh makes it), when enrolling as root."""
    if os.geteuid() != 0:
        return None
    import pwd

    try:
        pwd.getpwnam("hafen")
    except KeyError:
        return None
    return "hafen"


def _operator() -> Principal:
    """Whoever runs the command on the hub's machine: they hold its settings and store, so
    they act as a network admin; the tokens they make name them."""
    from hub.auth import Principal, Role

    name = f"cli:{getpass.getuser()}"[:64]
    return Principal(user_id=0, username=name, role=Role.NETWORK_ADMIN, sites=frozenset())


def _authority(settings: HubSettings) -> DeviceAuthority:
    from hub.device_identity import DeviceAuthority

    signing_key = read_secret(settings.signing.key)
    card_key = read_secret(settings.cards.key)
    authority = read_secret(lambda: DeviceAuthority.from_settings(settings, signing_key, card_key))
    if authority is None:
        raise fail(
            "this needs [ca] directory, [broker.tls], [broker.admin], [signing] key_file and"
            " [cards] hash_key_file in the hub's settings"
        )
    return authority
