"""``hafen hub ...``: the hub's services: API and dashboard, ingest, retention, reports, users."""

from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from hafen.cli.extras import require_extra

app = typer.Typer(no_args_is_help=True, help="The hub that runs the network.")


@app.callback()
def _needs_hub_extra() -> None:
    require_extra("hafen hub", "hub")


KeyOption = Annotated[Path, typer.Option("--key", help="The hub's Ed25519 signing key (PEM).")]


def _broker(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise typer.BadParameter("write the broker as HOST:PORT, e.g. localhost:1883")
    return host, int(port)


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


@app.command()
def ingest(
    key: KeyOption,
    db: Annotated[str | None, typer.Option(help="SQLAlchemy URL; default a SQLite file.")] = None,
    broker: Annotated[str, typer.Option(help="HOST:PORT of the broker.")] = "localhost:1883",
    name: Annotated[str, typer.Option(help="This worker's name, unique per worker.")] = "1",
    influx_url: Annotated[
        str | None, typer.Option(help="Mirror into InfluxDB 2 at this URL (for Grafana).")
    ] = None,
    influx_org: Annotated[str, typer.Option(help="The InfluxDB organisation.")] = "hafen",
    influx_bucket: Annotated[str, typer.Option(help="The InfluxDB bucket.")] = "hafen",
    influx_token_file: Annotated[
        Path | None, typer.Option(help="A file holding the InfluxDB token.")
    ] = None,
) -> None:
    """Run an ingest worker; start several with different --name to share the load."""
    from hub import db as hubdb
    from hub.access_lists import AclPublisher
    from hub.ingest.worker import IngestWorker
    from hub.keys import load_key
    from hub.mqtt import HubClient

    _logging()
    url = db or hubdb.default_url()
    host, port = _broker(broker)
    engine, signing_key = hubdb.connect(url), load_key(key)
    _warn_if_rollups_missing(engine)
    # Devices that report an older list than the newest get a snapshot of their own.
    client = HubClient(host, port, client_id=f"hafen-hub-catch-up-{name}")
    client.start()
    publisher = AclPublisher(engine, signing_key, client.publish, client.publish_many)
    sink = None
    if influx_url:
        from hub.ingest.influx import InfluxSink

        token = influx_token_file.read_text().strip() if influx_token_file else ""
        sink = InfluxSink(influx_url, token, influx_org, influx_bucket)
    worker = IngestWorker(
        engine,
        host,
        port,
        signing_key,
        name=name,
        on_state=lambda site, device, state: publisher.catch_up(site, device, state.acl_version),
        mirror=sink,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    worker.start()
    logging.getLogger("hub").info("ingest worker %s: broker %s, store %s", name, broker, url)
    stop.wait()
    worker.stop()
    publisher.close()
    client.stop()
    if sink is not None:
        sink.close()


def _logging() -> None:
    logging.basicConfig(
        level=os.environ.get("HAFEN_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


@app.command()
def serve(
    db: Annotated[str | None, typer.Option(help="SQLAlchemy URL; default a SQLite file.")] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    card_key_file: Annotated[
        Path | None, typer.Option(help="The network's card-hash key (hex), as on the doors.")
    ] = None,
    key: Annotated[Path | None, typer.Option(help="Signing key: send access lists.")] = None,
    broker: Annotated[str, typer.Option(help="HOST:PORT of the broker.")] = "localhost:1883",
    forwarded_allow_ips: Annotated[
        str,
        typer.Option(
            help="Reverse proxies whose X-Forwarded-For/-Proto are believed (comma-separated"
            " addresses): the client's address for sign-in limits, https for the cookie. '*'"
            " only if nothing can reach the hub but the proxy: anyone could claim any address."
        ),
    ] = "127.0.0.1",
    public_url: Annotated[
        str | None,
        typer.Option(help="Where browsers reach the hub behind a proxy (https://hub.example)."),
    ] = None,
) -> None:
    """Serve the hub's API (OpenAPI at /docs) and dashboard (/ui); by default on SQLite."""
    from hub import db as hubdb
    from hub.app import create_app
    from hub.server import hub_server

    _logging()
    url = db or hubdb.default_url()
    engine = hubdb.connect(url)
    _warn_if_rollups_missing(engine)
    card_key = bytes.fromhex(card_key_file.read_text().strip()) if card_key_file else None
    publisher = None
    if key is not None:
        from hub.access_lists import AclPublisher
        from hub.keys import load_key
        from hub.mqtt import HubClient

        client = HubClient(*_broker(broker), client_id="hafen-hub-api")
        client.start()
        publisher = AclPublisher(engine, load_key(key), client.publish, client.publish_many)
    typer.echo(f"hub store: {url}")
    typer.echo(f"hub API: http://{host}:{port} (OpenAPI: http://{host}:{port}/docs)")
    typer.echo(f"dashboard: http://{host}:{port}/ui/")
    if publisher is None:
        typer.echo("no --key: access-list changes are stored but not sent to the doors")
    hub_app = create_app(engine, card_key, publisher, public_url)
    hub_server(hub_app, host=host, port=port, forwarded_allow_ips=forwarded_allow_ips).run()


@app.command("create-user")
def create_user_command(
    username: Annotated[str, typer.Argument(help="The new user's sign-in name.")],
    role: Annotated[str, typer.Option(help="network_admin, site_operator or technician.")],
    site: Annotated[list[str] | None, typer.Option(help="A site an operator may see.")] = None,
    db: Annotated[str | None, typer.Option(help="SQLAlchemy URL; default a SQLite file.")] = None,
) -> None:
    """Add a hub user (asks for the password); the first network admin is made this way."""
    from hub import db as hubdb
    from hub.auth import Role, create_user

    try:
        role_value = Role(role)
    except ValueError:
        raise typer.BadParameter(f"role is one of {', '.join(r.value for r in Role)}") from None
    password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    try:
        create_user(
            hubdb.connect(db or hubdb.default_url()), username, password, role_value, site or []
        )
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    typer.echo(f"user {username} ({role_value.value}) created")


@app.command()
def retention(
    days: Annotated[int, typer.Option(min=1, help="Keep door events personal this long.")] = 180,
    db: Annotated[str | None, typer.Option(help="SQLAlchemy URL; default a SQLite file.")] = None,
) -> None:
    """Pseudonymise door events older than the retention period (run daily by a timer)."""
    from datetime import UTC, datetime, timedelta

    from hub import db as hubdb
    from hub.privacy import pseudonymize_events

    cutoff = datetime.now(UTC) - timedelta(days=days)
    changed = pseudonymize_events(hubdb.connect(db or hubdb.default_url()), cutoff)
    typer.echo(f"pseudonymised {changed} door events from before {cutoff:%Y-%m-%d %H:%M} UTC")


@app.command()
def report(
    month: Annotated[str, typer.Argument(help="The month, YYYY-MM.")],
    site: Annotated[list[str] | None, typer.Option(help="Only this site (repeatable).")] = None,
    db: Annotated[str | None, typer.Option(help="SQLAlchemy URL; default a SQLite file.")] = None,
) -> None:
    """Print the funders' monthly report as CSV (one row per site)."""
    from hub import db as hubdb
    from hub import reports

    try:
        rows = reports.monthly_report(
            hubdb.connect(db or hubdb.default_url()), month, set(site) if site else None
        )
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    typer.echo(reports.as_csv(rows), nl=False)


@app.command("rebuild-rollups")
def rebuild_rollups(
    db: Annotated[str | None, typer.Option(help="SQLAlchemy URL; default a SQLite file.")] = None,
) -> None:
    """Rebuild the visit and occupancy roll-ups from the stored events (after an upgrade)."""
    from hub import db as hubdb
    from hub.rollups import rebuild

    decisions, devices = rebuild(hubdb.connect(db or hubdb.default_url()))
    typer.echo(f"roll-ups rebuilt from {decisions} door decisions and {devices} devices' samples")


def _warn_if_rollups_missing(engine) -> None:
    """An upgraded store's history is not in the roll-ups yet: say how to fill them."""
    from hub.rollups import missing

    if missing(engine):
        typer.echo(
            "warning: this store has events that no report counts yet (it was upgraded from"
            " before roll-ups); stop ingest and run `hafen hub rebuild-rollups`",
            err=True,
        )
