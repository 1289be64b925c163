"""``hafen hub ...``: the hub's services (ingest now; the API and dashboard with later issues)."""

from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, help="The hub that runs the network.")

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
) -> None:
    """Run an ingest worker; start several with different --name to share the load."""
    from hub import db as hubdb
    from hub.ingest.worker import IngestWorker
    from hub.keys import load_key

    logging.basicConfig(
        level=os.environ.get("HAFEN_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    url = db or hubdb.default_url()
    host, port = _broker(broker)
    worker = IngestWorker(hubdb.connect(url), host, port, load_key(key), name=name)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    worker.start()
    logging.getLogger("hub").info("ingest worker %s: broker %s, store %s", name, broker, url)
    stop.wait()
    worker.stop()
