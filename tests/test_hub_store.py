"""The hub's store: Alembic builds the same schema on SQLite and PostgreSQL, idempotently."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from hub import db


def test_migrations_build_the_schema_the_models_describe(hub_url):
    engine = db.connect(hub_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), db.metadata)
            assert diff == []
            assert MigrationContext.configure(conn).get_current_revision() == "0001"
        assert {"events", "dead_letters", "acl_versions"} <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_connecting_again_migrates_nothing_and_keeps_data(hub_url):
    engine = db.connect(hub_url)
    with engine.begin() as conn:
        conn.execute(db.sites.insert().values(id="leipzig-ost", timezone="Europe/Berlin"))
    engine.dispose()
    engine = db.connect(hub_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(db.sites.select()).all() == [("leipzig-ost", "Europe/Berlin")]
    finally:
        engine.dispose()
