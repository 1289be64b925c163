"""Applying access lists to the local store: a snapshot or a delta, all of it or nothing.

A snapshot is written into shadow tables in short transactions without fsync and swapped in by
one quick, durable transaction that only renames tables; the old tables are emptied afterwards
in small steps. So a 100,000-card list never holds the write lock long enough to stall a tap
(each hold is a few milliseconds; dropping a 100,000-row table at once held it for 50). A
delta is small and applied in one transaction. Either is refused, changing nothing, if it is
for another site, not newer than the applied version, or (a delta) not based on it.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from itertools import islice
from zoneinfo import ZoneInfo

from edge.agent.store import EdgeStore, acl_tables, split_statements
from hafen.acl import AccessList, AccessListDelta, Card, Grant, Member, Plan, epoch_micros
from hafen.cards import InvalidUid, card_hash, parse_uid

log = logging.getLogger(__name__)

ACL_TABLES = ("cards", "grants", "members", "plans")  # children first: the order to drop
CHUNK_ROWS = 250
#: A row of one of the access-list tables, as inserted.
Row = tuple[object, ...]


class AccessListRefused(Exception):
    """An access list was not applied; the message says why and the store is unchanged.

    The device then reports its applied version in its state, and the hub sends a snapshot.
    """


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a list is decoded and applied.

    Decoding a 100,000-member list allocates millions of objects, and each full collection
    pass over them stopped every thread, a tap's too, for 0.3 to 0.5 s. Reference counting
    still frees everything that is not in a cycle; the collector runs again afterwards.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


#: Meta key of the hub key (base64) that signed the list in force; "" for a list loaded from a
#: file (``hafen edge load-acl``), absent for one applied before signers were kept.
SIGNER_KEY = "acl_signer"


def applied_signer(store: EdgeStore) -> str | None:
    """The hub key that vouched for the list in force: "" if it was loaded from a file, None if
    it was applied before doors kept their lists' signers (see ``vouch_for_applied``)."""
    return store.get_meta(SIGNER_KEY)


def vouch_for_applied(store: EdgeStore, signer: str) -> bool:
    """Keep ``signer`` as the signer of the list in force if none is known: the hub's signed
    list of the applied version arrived again (the retained one, on every connection), so a
    list applied before signers were kept gets one without waiting for the next change. A
    list loaded from a file keeps its "" (the hub's list of the same version was not applied
    over it). Writes only when it changes something; True if it did. Best effort: a store that
    cannot be written now (a full SD card) is left as it is, and the next connection tries
    again, with no fault raised for it."""
    if applied_signer(store) is not None or not signer:
        return False
    try:
        with store.write() as conn:
            if applied_signer(store) is not None:
                return False
            store.set_meta(conn, SIGNER_KEY, signer)
    except sqlite3.Error as exc:
        log.info("could not keep the signer of the access list in force yet: %s", exc)
        return False
    return True


def applied_version(store: EdgeStore) -> int:
    """The version of the access list in force, 0 when none was ever applied."""
    value = store.get_meta("acl_version")
    return int(value) if value else 0


def check_version(store: EdgeStore, site: str, list_site: str, version: int) -> int:
    """Refuse a list for another site or one that is not newer; return the applied version."""
    if list_site != site:
        raise AccessListRefused(f"the list is for site {list_site!r}, this device is at {site!r}")
    current = applied_version(store)
    if version <= current:
        raise AccessListRefused(f"version {version} is not newer than applied version {current}")
    return current


def apply_snapshot(
    store: EdgeStore, acl: AccessList, site: str, tz: ZoneInfo, key: bytes, signer: str = ""
) -> int:
    """Replace the whole access list with ``acl``; returns the number of cards now known.

    ``signer`` is the hub key (base64) whose signature the list carried; "" for one loaded
    from a file.
    """
    check_version(store, site, acl.site, acl.version)
    cards = _card_rows(acl.cards, key)
    if len({row[0] for row in cards}) != len(cards):
        raise AccessListRefused("the same card appears more than once")
    # Shadow tables carry this process's id: two applies at once never share them.
    suffix = f"_next_{os.getpid()}"
    with store.write() as conn:
        _drop_abandoned_shadows(store, conn)
        for statement in split_statements(acl_tables(suffix, f"{suffix}_v{acl.version}")):
            conn.execute(statement)
    retired = f"_old_{os.getpid()}_v{acl.version}"
    try:
        grants = [_grant_row(m.id, g, tz) for m in acl.members for g in m.grants]
        with store.without_fsync():
            _insert_chunked(store, f"plans{suffix}", [_plan_row(p) for p in acl.plans])
            members = [(m.id, int(m.blocked)) for m in acl.members]
            _insert_chunked(store, f"members{suffix}", members)
            _insert_chunked(store, f"grants{suffix}", grants)
            _insert_chunked(store, f"cards{suffix}", cards)
        with store.write() as conn:
            check_version(store, site, acl.site, acl.version)  # nothing newer slipped in
            # Renames only: SQLite rewrites the foreign keys, so each family stays whole.
            for table in ACL_TABLES:
                conn.execute(f"ALTER TABLE {table} RENAME TO {table}{retired}")
            for table in reversed(ACL_TABLES):
                conn.execute(f"ALTER TABLE {table}{suffix} RENAME TO {table}")
            _set_applied(store, conn, acl.site, acl.version, signer)
    except BaseException:
        with store.write() as conn:
            for table in ACL_TABLES:
                conn.execute(f"DROP TABLE IF EXISTS {table}{suffix}")
        raise
    try:
        _drop_in_steps(store, [f"{table}{retired}" for table in ACL_TABLES])
    except sqlite3.Error:
        # The new list is in force; the old rows only take space (a full disk refuses even
        # the DELETE). The next snapshot drops them (_drop_abandoned_shadows).
        log.warning("could not drop the previous list's tables yet", exc_info=True)
    return len(cards)


def _drop_in_steps(store: EdgeStore, tables: list[str]) -> None:
    """Empty ``tables`` (children first) a chunk per transaction, then drop them.

    The rows are garbage once the swap committed, so no step needs an fsync of its own.
    """
    with store.without_fsync():
        for table in tables:
            key = "hash" if table.startswith("cards") else "rowid"
            while True:
                with store.write() as conn:
                    deleted = conn.execute(
                        f"DELETE FROM {table} WHERE {key} IN"
                        f" (SELECT {key} FROM {table} LIMIT {CHUNK_ROWS})"
                    ).rowcount
                if deleted < CHUNK_ROWS:
                    break
                time.sleep(0.001)
        with store.write() as conn:
            for table in tables:
                conn.execute(f"DROP TABLE {table}")


def _drop_abandoned_shadows(store: EdgeStore, conn: sqlite3.Connection) -> None:
    """Drop shadow and retired tables left by a process that died while applying a snapshot,
    and this process's own from an attempt that failed and could not clean up (a full disk
    refuses the DROP too): one updater per process applies snapshots, so none of ours is in
    use."""
    abandoned = []
    for name in store.table_names():
        for marker in ("_next_", "_old_"):
            base, sep, rest = name.partition(marker)
            pid = rest.split("_v")[0]
            owner = int(pid) if pid.isdigit() else None
            if sep and base in ACL_TABLES and owner and (owner == os.getpid() or not _alive(owner)):
                abandoned.append((ACL_TABLES.index(base), name))
    for _, name in sorted(abandoned):  # children before the tables they point at
        conn.execute(f"DROP TABLE {name}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def apply_delta(
    store: EdgeStore, delta: AccessListDelta, site: str, tz: ZoneInfo, signer: str = ""
) -> int:
    """Apply the changes of ``delta`` on top of its base; returns the new version.

    ``signer`` as for ``apply_snapshot``; a signed delta on a base loaded from a file leaves
    a list the hub did not wholly sign, so it stays unsigned ("").
    """
    try:
        with store.write() as conn:
            current = check_version(store, site, delta.site, delta.version)
            if delta.base != current:
                raise AccessListRefused(
                    f"delta from version {delta.base} does not apply to version {current}"
                )
            _delete(conn, "cards", "hash", delta.removed_cards)
            _delete(conn, "members", "id", delta.removed_members)  # their grants cascade
            conn.executemany(
                "INSERT INTO plans VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE"
                " SET sites = excluded.sites, windows = excluded.windows",
                [_plan_row(p) for p in delta.plans],
            )
            _upsert_members(conn, delta.members, tz)
            _delete(conn, "plans", "id", delta.removed_plans)
            conn.executemany(
                "INSERT INTO cards VALUES (?, ?, ?) ON CONFLICT(hash) DO UPDATE"
                " SET member_id = excluded.member_id, revoked = excluded.revoked",
                _card_rows(delta.cards, b""),
            )
            base_signer = applied_signer(store)
            _set_applied(
                store, conn, delta.site, delta.version, signer if base_signer != "" else ""
            )
    except sqlite3.IntegrityError:
        # Foreign keys caught a card or grant left pointing at nothing: the base differs.
        raise AccessListRefused("the delta leaves cards or grants pointing nowhere") from None
    return delta.version


def _upsert_members(conn: sqlite3.Connection, members: list[Member], tz: ZoneInfo) -> None:
    ids = [(m.id,) for m in members]
    conn.executemany("DELETE FROM grants WHERE member_id = ?", ids)
    conn.executemany(
        "INSERT INTO members (id, blocked) VALUES (?, ?)"
        " ON CONFLICT(id) DO UPDATE SET blocked = excluded.blocked",
        [(m.id, int(m.blocked)) for m in members],
    )
    conn.executemany(
        "INSERT INTO grants VALUES (?, ?, ?, ?, ?, ?)",
        [_grant_row(m.id, g, tz) for m in members for g in m.grants],
    )


def _delete(conn: sqlite3.Connection, table: str, column: str, keys: list[str]) -> None:
    conn.executemany(f"DELETE FROM {table} WHERE {column} = ?", [(k,) for k in keys])


def _insert_chunked(store: EdgeStore, table: str, rows: Sequence[Row]) -> None:
    if not rows:
        return
    marks = ", ".join("?" * len(rows[0]))
    for chunk in _chunks(rows, CHUNK_ROWS):
        with store.write() as conn:
            conn.executemany(f"INSERT INTO {table} VALUES ({marks})", chunk)
        time.sleep(0.001)  # let a waiting tap take the write lock between chunks


def _chunks(rows: Iterable[Row], size: int) -> Iterator[list[Row]]:
    it = iter(rows)
    while chunk := list(islice(it, size)):
        yield chunk


def _set_applied(
    store: EdgeStore, conn: sqlite3.Connection, site: str, version: int, signer: str
) -> None:
    store.set_meta(conn, "acl_version", version)
    store.set_meta(conn, SIGNER_KEY, signer)
    store.set_meta(conn, "acl_site", site)
    store.set_meta(conn, "acl_applied_at", datetime.now(UTC).isoformat(timespec="seconds"))


def _card_rows(cards: list[Card], key: bytes) -> list[tuple[str, str, int]]:
    try:
        return [
            (
                c.hash if c.hash is not None else card_hash(key, parse_uid(c.uid or "")),
                c.member,
                int(c.revoked),
            )
            for c in cards
        ]
    except InvalidUid as exc:
        raise AccessListRefused(f"a card's uid is invalid: {exc}") from None


def _plan_row(plan: Plan) -> tuple[str, str | None, str | None]:
    windows = None if plan.windows is None else [w.model_dump(mode="json") for w in plan.windows]
    return plan.id, _json(plan.sites), _json(windows)


def _grant_row(
    member: str, grant: Grant, tz: ZoneInfo
) -> tuple[None, str, str | None, str | None, int | None, int | None]:
    valid_from, valid_until = grant.bounds(tz)
    return (
        None,
        member,
        grant.plan,
        _json(grant.sites),
        None if valid_from is None else epoch_micros(valid_from),
        None if valid_until is None else epoch_micros(valid_until),
    )


def _json(value: Sequence[object] | None) -> str | None:
    return None if value is None else json.dumps(value)
