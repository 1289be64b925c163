"""``hafen hub ingest`` and ``hafen hub serve``: the hub's two long-running services.

Each signs in at the broker as its own client (``[broker.ingest]``, ``[broker.publisher]``),
over TLS with ``[broker.tls]``; ``serve`` also lets devices enrol when the CA and the broker's
admin are configured (hub.device_identity).
"""

from __future__ import annotations

import functools
import logging
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from hafen.cli.hub_settings import (
    BrokerOption,
    ConfigOption,
    DbOption,
    broker_flags,
    configure_logging,
    fail,
    load_settings,
    read_secret,
    shown,
    warn_if_rollups_missing,
)

if TYPE_CHECKING:  # the hub's libraries load inside the commands, on a hub install only
    from hafen.protocol import DeviceState
    from hub.access_lists import AclPublisher
    from hub.ingest.worker import IngestWorker
    from hub.mqtt import HubClient


def ingest_command(
    config: ConfigOption = None,
    key: Annotated[
        Path | None, typer.Option(help="The hub's Ed25519 signing key (PEM) [signing.key_file].")
    ] = None,
    db: DbOption = None,
    broker: BrokerOption = None,
    name: Annotated[
        str | None,
        typer.Option(help="This worker's name, unique per worker [ingest.name]; default 1."),
    ] = None,
    influx_url: Annotated[
        str | None,
        typer.Option(help="Mirror into InfluxDB 2 at this URL (for Grafana) [ingest.influx.url]."),
    ] = None,
    influx_org: Annotated[
        str | None,
        typer.Option(help="The InfluxDB organisation [ingest.influx.org]; default hafen."),
    ] = None,
    influx_bucket: Annotated[
        str | None, typer.Option(help="The InfluxDB bucket [ingest.influx.bucket]; default hafen.")
    ] = None,
    influx_token_file: Annotated[
        Path | None,
        typer.Option(help="A file holding the InfluxDB token [ingest.influx.token_file]."),
    ] = None,
    card_key_file: Annotated[
        Path | None,
        typer.Option(
            help="The network's card-hash key (hex), as on the doors: it checks that a door's"
            " state is its own [cards.hash_key_file]."
        ),
    ] = None,
    retire: Annotated[
        bool,
        typer.Option(
            "--retire",
            help="End worker --name for good (scaled down, its machine gone): store what its"
            " broker session holds, leave the group and stop holding the no-show sweep.",
        ),
    ] = False,
) -> None:
    """Run an ingest worker; start several with different --name to share the load."""
    from hub import db as hubdb
    from hub.access_lists import AclPublisher
    from hub.ingest.worker import IngestWorker
    from hub.mqtt import HubClient

    settings = load_settings(
        config,
        {
            "signing.key_file": ("--key", key),
            "store.url": ("--db", db),
            **broker_flags(broker),
            "ingest.name": ("--name", name),
            "ingest.influx.url": ("--influx-url", influx_url),
            "ingest.influx.org": ("--influx-org", influx_org),
            "ingest.influx.bucket": ("--influx-bucket", influx_bucket),
            "ingest.influx.token_file": ("--influx-token-file", influx_token_file),
            "cards.hash_key_file": ("--card-key-file", card_key_file),
        },
    )
    signing_key = read_secret(settings.signing.key)
    if signing_key is None:
        raise fail(
            "ingest needs the hub's signing key: set [signing] key_file in the config,"
            " HAFEN_HUB__SIGNING__KEY_FILE or --key"
        )
    card_key = read_secret(settings.cards.key)
    if card_key is None:
        raise fail(
            "ingest needs the network's card key to tell a door's own state from a forged one:"
            " set [cards] hash_key_file in the config, HAFEN_HUB__CARDS__HASH_KEY_FILE or"
            " --card-key-file"
        )
    influx = settings.ingest.influx
    token = read_secret(influx.token) if influx.url else ""
    url = read_secret(settings.store.sqlalchemy_url)
    host, port, name = settings.broker.host, settings.broker.port, settings.ingest.name
    login = read_secret(functools.partial(settings.broker.login, "ingest"))

    configure_logging()
    engine = hubdb.connect(url)
    warn_if_rollups_missing(engine)
    # Devices that report an older list than the newest get a snapshot of their own.
    client = HubClient(host, port, client_id=f"hafen-hub-catch-up-{name}", login=login)
    client.start()
    publisher = AclPublisher(engine, signing_key, client.publish, client.publish_many)
    sink = None
    if influx.url:
        from hub.ingest.influx import InfluxSink

        sink = InfluxSink(influx.url, token, influx.org, influx.bucket)

    def catch_up(site: str, device: str, state: DeviceState) -> None:
        publisher.catch_up(site, device, state.acl_version)

    worker = IngestWorker(
        engine,
        host,
        port,
        signing_key,
        name=name,
        on_state=catch_up,
        mirror=sink,
        card_key=card_key,
        login=login,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    worker.start()
    if retire:
        _retire(worker, publisher, client)
        return
    logging.getLogger("hub").info(
        "ingest worker %s: broker %s, store %s", name, settings.broker.shown(), shown(url)
    )
    stop.wait()
    worker.stop()
    publisher.close()
    client.stop()
    if sink is not None:
        sink.close()


def serve_command(
    config: ConfigOption = None,
    db: DbOption = None,
    host: Annotated[
        str | None, typer.Option(help="Address to listen on [http.host]; default 127.0.0.1.")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Port to listen on [http.port]; default 8080.")
    ] = None,
    card_key_file: Annotated[
        Path | None,
        typer.Option(
            help="The network's card-hash key (hex), as on the doors [cards.hash_key_file]."
        ),
    ] = None,
    key: Annotated[
        Path | None, typer.Option(help="Signing key: send access lists [signing.key_file].")
    ] = None,
    broker: BrokerOption = None,
    forwarded_allow_ips: Annotated[
        str | None,
        typer.Option(
            help="Reverse proxies whose X-Forwarded-For/-Proto are believed (comma-separated"
            " addresses) [http.forwarded_allow_ips]; default 127.0.0.1: the client's address"
            " for sign-in limits, https for the cookie. '*' only if nothing can reach the hub"
            " but the proxy: anyone could claim any address."
        ),
    ] = None,
    public_url: Annotated[
        str | None,
        typer.Option(
            help="Where browsers reach the hub behind a proxy (https://hub.example)"
            " [http.public_url]."
        ),
    ] = None,
) -> None:
    """Serve the hub's API (OpenAPI at /docs) and dashboard (/ui); by default on SQLite."""
    settings = load_settings(
        config,
        {
            "store.url": ("--db", db),
            "http.host": ("--host", host),
            "http.port": ("--port", port),
            "cards.hash_key_file": ("--card-key-file", card_key_file),
            "signing.key_file": ("--key", key),
            **broker_flags(broker),
            "http.forwarded_allow_ips": ("--forwarded-allow-ips", forwarded_allow_ips),
            "http.public_url": ("--public-url", public_url),
        },
    )
    card_key = read_secret(settings.cards.key)
    signing_key = read_secret(settings.signing.key)
    url = read_secret(settings.store.sqlalchemy_url)
    http = settings.http

    from hub import db as hubdb
    from hub.app import create_app
    from hub.device_identity import DeviceAuthority
    from hub.mail import Mailer
    from hub.server import hub_server

    mail = (
        read_secret(functools.partial(Mailer.from_settings, settings.mail))
        if settings.mail
        else None
    )

    configure_logging()
    engine = hubdb.connect(url)
    warn_if_rollups_missing(engine)
    authority = read_secret(lambda: DeviceAuthority.from_settings(settings, signing_key, card_key))
    publisher = None
    renewals = None
    if signing_key is not None:
        from hub.access_lists import AclPublisher
        from hub.mqtt import HubClient
        from hub.services.renewal_desk import RenewalDesk

        login = read_secret(functools.partial(settings.broker.login, "publisher"))
        at = settings.broker
        if authority is not None:
            # Doors renew their certificates through the publisher's connection (the desk
            # sends only once a request came in on it: ``client`` is made below by then).
            def send(topic: str, payload: bytes) -> None:
                client.publish(topic, payload)

            renewals = RenewalDesk(engine, authority, signing_key, send).start()
        client = HubClient(
            at.host,
            at.port,
            client_id="hafen-hub-api",
            login=login,
            subscriptions=renewals.subscriptions() if renewals else None,
            on_message=renewals.take_message if renewals else None,
        )
        client.start()
        publisher = AclPublisher(engine, signing_key, client.publish, client.publish_many)
    typer.echo(f"hub store: {shown(url)}")
    typer.echo(
        f"hub API: http://{http.host}:{http.port} (OpenAPI: http://{http.host}:{http.port}/docs)"
    )
    typer.echo(f"dashboard: http://{http.host}:{http.port}/ui/")
    if publisher is None:
        typer.echo(
            "no signing key (signing.key_file or --key): access-list changes are stored but"
            " not sent to the doors"
        )
    if mail is None:
        typer.echo("no [mail]: invitations show their link to whoever invites, none is mailed")
    else:
        typer.echo(f"mail: through {mail.settings.shown()} from {mail.settings.sender}")
        if http.public_url is None:
            typer.echo(
                "mail links point at the address each invitation was made through: set"
                " [http] public_url to the one members reach"
            )
    keeper = None
    if authority is None:
        typer.echo("devices cannot enrol here: [ca] directory and [broker.admin] are not set")
    else:
        from hub.device_identity import RevocationListKeeper

        # The broker refuses every certificate once its revocation list has expired.
        keeper = RevocationListKeeper(engine, authority.ca).start()
    device_releases = None
    if settings.ca.directory is not None and settings.releases.directory is not None:
        from hafen.config import ConfigError
        from hub.pki import CaFiles
        from hub.services.release_downloads import DeviceReleases

        ca_cert = CaFiles(settings.ca.directory).ca_cert
        try:
            device_releases = DeviceReleases.load(ca_cert, settings.releases.require_directory())
        except (ConfigError, OSError, ValueError) as exc:
            raise fail(f"releases for the doors: {exc}") from None
        typer.echo(f"releases for the doors: {settings.releases.directory}")
    gazetteer = read_secret(settings.booking.places)
    if gazetteer is not None:
        typer.echo(
            f"places for finding a space: {len(gazetteer):,} from {settings.booking.gazetteer}"
        )
    hub_app = create_app(
        engine,
        card_key,
        publisher,
        http.public_url,
        max_body_bytes=http.max_body_bytes,
        token_max_days=http.token_max_days,
        authority=authority,
        mail=mail,
        gazetteer=gazetteer,
        device_releases=device_releases,
    )
    hub_server(
        hub_app,
        host=http.host,
        port=http.port,
        forwarded_allow_ips=",".join(http.forwarded_allow_ips),
    ).run()
    if renewals is not None:
        renewals.stop()
    if keeper is not None:
        keeper.stop()


def _retire(worker: IngestWorker, publisher: AclPublisher, client: HubClient) -> None:
    """Stop ``worker`` cleanly right after it connected: what its session held is stored,
    its subscription goes, and its row with it (hub.ingest_beats)."""
    connected = worker.client.connected.wait(30)
    gone = worker.stop() if connected else False
    if not connected:
        worker.client.stop()
    publisher.close()
    client.stop()
    if not gone:
        typer.echo(
            f"ingest worker {worker.name} is not retired: it could not reach the broker or"
            " store everything its session held; the no-show sweep still waits for it",
            err=True,
        )
        raise typer.Exit(1)
    typer.echo(f"ingest worker {worker.name} retired: the no-show sweep no longer waits for it")
