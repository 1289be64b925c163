"""Throwaway PostgreSQL databases for tests and benchmarks: made fresh, dropped after."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

#: The server the tests and benchmarks use (scripts/setup.sh creates role and database).
PG_SERVER = os.environ.get("HAFEN_TEST_PG", "postgresql+psycopg:///test?host=/var/run/postgresql")


@contextmanager
def throwaway_database(prefix: str = "hafen_test", server: str = PG_SERVER) -> Iterator[str]:
    """Create an empty database on ``server`` and yield its URL; drop it afterwards."""
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()
