"""Throwaway PostgreSQL databases for tests and benchmarks: made fresh, dropped after.

Migrating a new database takes a few hundred milliseconds and dropping one up to a second or
two (the server waits for the last backend to leave and removes its files), for every test on
PostgreSQL. So a test that wants a migrated store gets a copy of a database migrated once
(``migrated_template``: PostgreSQL copies a template's files), and the tests hand their
databases to ``BackgroundDrops``, which drops them while the next tests run."""

from __future__ import annotations

import functools
import hashlib
import os
import queue
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from hub import db

#: The server the tests and benchmarks use (scripts/setup.sh creates role and database).
PG_SERVER = os.environ.get("HAFEN_TEST_PG", "postgresql+psycopg:///test?host=/var/run/postgresql")


def database_url(server: str, name: str) -> str:
    return make_url(server).set(database=name).render_as_string(hide_password=False)


class BackgroundDrops:
    """Drops databases in a thread of its own, one after another; ``close`` waits for the
    last and raises if any drop failed (a database left behind is named, not lost)."""

    def __init__(self, server: str = PG_SERVER) -> None:
        self.server = server
        self._names: queue.Queue[str | None] = queue.Queue()
        self._failed: list[str] = []
        self._thread = threading.Thread(target=self._run, name="pg-drops", daemon=True)
        self._thread.start()

    def drop(self, name: str) -> None:
        self._names.put(name)

    def close(self) -> None:
        self._names.put(None)
        self._thread.join()
        assert not self._failed, f"databases not dropped: {self._failed}"

    def _run(self) -> None:
        admin = create_engine(self.server, isolation_level="AUTOCOMMIT")
        try:
            while (name := self._names.get()) is not None:
                try:
                    with admin.connect() as conn:
                        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                except Exception as exc:  # reported by close(), in the test process
                    self._failed.append(f"{name} ({exc})")
        finally:
            admin.dispose()


@contextmanager
def throwaway_database(
    prefix: str = "hafen_test",
    server: str = PG_SERVER,
    template: str | None = None,
    drops: BackgroundDrops | None = None,
) -> Iterator[str]:
    """Create a database on ``server`` (empty, or a copy of ``template``) and yield its URL;
    drop it afterwards (by ``drops``, in the background, if given)."""
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        copy_of = f" TEMPLATE {template}" if template else ""
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {name}{copy_of}"))
        try:
            yield database_url(server, name)
        finally:
            if drops is not None:
                drops.drop(name)
            else:
                with admin.connect() as conn:
                    conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    finally:
        admin.dispose()


def _migrations_digest() -> str:
    """What the hub's migrations are, as a short hash: a template built from other migrations
    (an older checkout, another branch on the same server) has another name."""
    folder = Path(db.__file__).parent / "migrations"
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*.py")):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


@functools.cache
def migrated_template(server: str = PG_SERVER) -> str:
    """The name of a database on ``server`` migrated to the newest schema of the migrations
    in this checkout, and empty: made once, by whichever test process gets there first (an
    advisory lock holds the others), built under a name of its own and renamed when done,
    so a half-built one is never copied. Nobody stays connected to it: PostgreSQL copies a
    template only while no one is."""
    name = f"hafen_template_{_migrations_digest()}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(hashtext(:name))"), {"name": name})
            try:
                exists = conn.scalar(
                    text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
                )
                if not exists:
                    building = f"{name}_{uuid.uuid4().hex[:8]}"
                    conn.execute(text(f"CREATE DATABASE {building}"))
                    try:
                        db.connect(database_url(server, building)).dispose()
                        conn.execute(text(f"ALTER DATABASE {building} RENAME TO {name}"))
                    except Exception:
                        conn.execute(text(f"DROP DATABASE {building} WITH (FORCE)"))
                        raise
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(hashtext(:name))"), {"name": name})
    finally:
        admin.dispose()
    return name
