"""The part of the firehose benchmark that runs inside the source tree under test.

benchmarks/ingest_firehose.py runs this file with ``PYTHONPATH`` set to one tree (the candidate,
or a checkout of the baseline revision), so ``hub`` and ``hafen`` come from that tree and nothing
else: it imports only them and their libraries, never the benchmark around it. Two commands:

``seed URL REGISTRY``: create the store with the tree's own migrations (``hub.db.connect``) and
insert the registry (benchmarks/firehose_stream.py), keeping the columns the tree's tables have.

``worker URL PORT NAME CARD_KEY``: run one ``IngestWorker`` as ``hafen hub ingest`` does, with the
card key only if the tree's worker takes one. Prints one JSON line once subscribed, runs until
its stdin closes, stops, and prints what it stored.

Each prints where ``hub`` was imported from, so the benchmark can check it measured the tree it
meant to.
"""

from __future__ import annotations

import inspect
import json
import logging
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import DateTime, Table, insert

import hub
from hub import db


def _fit(table: Table, row: dict[str, Any], dropped: set[str]) -> dict[str, Any]:
    """The row with only the table's columns, and ISO times as datetimes."""
    fitted = {}
    for name, value in row.items():
        if name not in table.c:
            dropped.add(f"{table.name}.{name}")
            continue
        if isinstance(table.c[name].type, DateTime) and isinstance(value, str):
            value = datetime.fromisoformat(value)
        fitted[name] = value
    return fitted


def seed(url: str, registry: Path) -> None:
    engine = db.connect(url)
    tables: dict[str, list[dict[str, Any]]] = json.loads(registry.read_text())
    dropped: set[str] = set()
    with engine.begin() as conn:
        for name, rows in tables.items():  # in the file's order: sites before their devices
            table = db.metadata.tables[name]
            conn.execute(insert(table), [_fit(table, row, dropped) for row in rows])
    engine.dispose()
    counts = {name: len(rows) for name, rows in tables.items()}
    print(json.dumps({"hub": hub.__file__, "seeded": counts, "dropped": sorted(dropped)}))


def work(url: str, port: int, name: str, card_key: bytes) -> None:
    from hub.ingest.worker import IngestWorker

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    engine = db.connect(url)
    takes_card_key = "card_key" in inspect.signature(IngestWorker).parameters
    extra: dict[str, Any] = {"card_key": card_key} if takes_card_key else {}
    worker = IngestWorker(
        engine, "127.0.0.1", port, Ed25519PrivateKey.generate(), name=name, **extra
    )
    # Ready means subscribed: a message published before the shared subscription exists
    # reaches nobody. HubClient does not use paho's on_subscribe, so it is ours to set.
    subscribed = threading.Event()
    worker.client.client.on_subscribe = lambda *_: subscribed.set()
    worker.start()
    if not subscribed.wait(15):
        raise SystemExit(f"worker {name}: not subscribed within 15 s")
    print(json.dumps({"ready": name, "hub": hub.__file__, "card_key": takes_card_key}), flush=True)
    # CPU time of the whole process (all its threads) from here on: a figure that other load
    # on the machine disturbs far less than the wall-clock rate.
    cpu_at_ready = time.process_time()
    sys.stdin.read()  # until the benchmark closes it
    worker.stop()
    cpu = time.process_time() - cpu_at_ready
    engine.dispose()
    print(json.dumps({"stored": worker.stored, "cpu_seconds": cpu}), flush=True)


def main() -> None:
    command, args = sys.argv[1], sys.argv[2:]
    if command == "seed":
        seed(args[0], Path(args[1]))
    elif command == "worker":
        work(args[0], int(args[1]), args[2], bytes.fromhex(args[3]))
    else:
        raise SystemExit(f"unknown command {command!r}: seed or worker")


if __name__ == "__main__":
    main()
