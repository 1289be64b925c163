"""Damaging a door's store as SD cards and power cuts do: a zeroed header, a truncated file,
a page of garbage in one table, a file of garbage, a garbage write-ahead log."""

from __future__ import annotations

import os
import random
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from edge.agent.access_list import apply_snapshot
from edge.agent.store import EdgeStore
from hafen.protocol import AccessDecision
from tests.support.edge import CARD_KEY, site_acl

#: The members of the store built here: m0 .. m2999, each with one card.
CARDS = {bytes([0x04, 0x51, 0x10, 0x20, i >> 8, i & 0xFF, 0x07]): f"m{i}" for i in range(3000)}


def build_store(path: Path, events: int = 40, site: str = "leipzig-ost", **meta: str) -> dict:
    """A store with a 3,000-card list and ``events`` decisions in its outbox, closed again
    (checkpointed: everything is in the main file). Returns its epoch and event ids."""
    store = EdgeStore(path, "normal")
    at = datetime.now(UTC)

    def record(members: range) -> list[str]:
        return [
            store.record_event(
                AccessDecision(card="ab" * 16, allowed=True, member=f"m{i}"), at
            ).event_id
            for i in members
        ]

    # Half the events before the list and half after: their pages lie at both ends of the file.
    ids = record(range(events // 2))
    apply_snapshot(store, site_acl(CARDS), site, ZoneInfo("Europe/Berlin"), CARD_KEY)
    ids += record(range(events // 2, events))
    if meta:
        with store.write() as conn:
            for key, value in meta.items():
                store.set_meta(conn, key, value)
    epoch = store.epoch
    store.close()
    return {"epoch": epoch, "event_ids": ids}


def pages_of(path: Path, table: str, leaf: bool = True) -> list[int]:
    """Page numbers of ``table``'s b-tree (its leaves, or the others)."""
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(
            "SELECT pageno, pagetype FROM dbstat WHERE name = ? ORDER BY pageno", (table,)
        ).fetchall()
    finally:
        conn.close()
    return [page for page, kind in rows if (kind == "leaf") == leaf]


def page_holding(path: Path, table: str, text: str) -> int:
    """The leaf page of ``table`` whose bytes hold ``text`` (a card hash, say)."""
    with path.open("rb") as f:
        data = f.read()
    for page in pages_of(path, table):
        if text.encode() in data[(page - 1) * 4096 : page * 4096]:
            return page
    raise LookupError(f"{text} is on no leaf of {table}")


def garble_page(path: Path, page: int) -> None:
    """Write random bytes over one page, as a failing SD card might."""
    with path.open("r+b") as f:
        f.seek((page - 1) * 4096)
        f.write(random.randbytes(4096))


def zero_header(path: Path) -> None:
    with path.open("r+b") as f:
        f.write(bytes(100))


def truncate(path: Path) -> None:
    """Cut the file to half its pages (a copy cut short, a file system repair)."""
    pages = path.stat().st_size // 4096
    os.truncate(path, pages // 2 * 4096)


def garbage_file(path: Path) -> None:
    path.write_bytes(random.randbytes(path.stat().st_size))


def garbage_wal(path: Path) -> None:
    path.with_name(path.name + "-wal").write_bytes(random.randbytes(3 * 4096 + 32))


def garble_cards_page(path: Path) -> None:
    garble_page(path, pages_of(path, "cards")[5])


#: Each kind of damage, and whether outbox rows can still be read after it.
DAMAGE: dict[str, tuple[Callable[[Path], None], bool]] = {
    "zeroed header": (zero_header, True),
    "truncated": (truncate, True),
    "damaged cards page": (garble_cards_page, True),
    "garbage": (garbage_file, False),
    "garbage wal": (garbage_wal, True),
}
