"""The hub's store: Alembic builds the same schema on SQLite and PostgreSQL, idempotently."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, select

from hub import db


def test_migrations_build_the_schema_the_models_describe(hub_url):
    engine = db.connect(hub_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), db.metadata)
            assert diff == []
            head = ScriptDirectory.from_config(db.alembic_config()).get_current_head()
            assert MigrationContext.configure(conn).get_current_revision() == head
        assert {"events", "dead_letters", "acl_versions"} <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_dead_letters_stored_whole_before_0008_are_cut_to_their_prefix(hub_url):
    """An attack before the cap left whole payloads: the migration keeps prefix, size, hash."""
    import hashlib
    from datetime import UTC, datetime

    engine = db.connect(hub_url, upgrade=False)
    try:
        db.migrate(engine, "0007")
        payload = b"x" * 300_000
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO dead_letters (topic, payload, reason, received_at)"
                + (
                    " VALUES (%s, %s, %s, %s)"
                    if engine.dialect.name == "postgresql"
                    else " VALUES (?, ?, ?, ?)"
                ),
                ("hafen/v1/s/d/evt/x", payload, "test", datetime.now(UTC)),
            )
        db.migrate(engine)
        with engine.connect() as conn:
            row = conn.execute(select(db.dead_letters)).one()
        assert len(row.payload) == 4096 and row.payload_bytes == 300_000
        assert row.payload_sha256 == hashlib.sha256(payload).hexdigest()
    finally:
        engine.dispose()


def test_tokens_stored_without_an_end_before_0010_get_the_maximum(hub_url):
    """Tokens that never expired before every token had to: one maximum lifetime from the
    migration on, no longer forever."""
    from datetime import UTC, datetime, timedelta

    engine = db.connect(hub_url, upgrade=False)
    try:
        db.migrate(engine, "0008")
        now = datetime.now(UTC)
        with engine.begin() as conn:
            conn.execute(
                db.users.insert().values(
                    id=1,
                    username="nadia",
                    password_hash="x",
                    role="network_admin",
                    disabled=False,
                    created_at=now,
                )
            )
            conn.execute(
                sa.table(
                    "api_tokens",
                    *(sa.column(c) for c in ("token_hash", "user_id", "name", "created_at")),
                )
                .insert()
                .values(token_hash="a" * 64, user_id=1, name="old", created_at=now)
            )
        db.migrate(engine)
        with engine.connect() as conn:
            row = conn.execute(select(db.api_tokens)).one()
        year = now + timedelta(days=365)
        assert year <= db.aware(row.expires_at) < year + timedelta(minutes=5)
        assert row.bound_to is None
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
            rows = conn.execute(select(db.sites.c.id, db.sites.c.timezone)).all()
            assert rows == [("leipzig-ost", "Europe/Berlin")]
    finally:
        engine.dispose()


def _event(seq: int, epoch: str = "00000000000000aa", site: str = "s", device: str = "d"):
    import os
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    return {
        "event_id": os.urandom(16).hex(),
        "site": site,
        "device": device,
        "epoch": epoch,
        "seq": seq,
        "kind": "door.exit",
        "at": now,
        "data": {"source": "button"},
        "received_at": now,
    }


def test_the_progress_mark_passes_dead_letters_and_stops_at_gaps(hub_url):
    from datetime import UTC, datetime

    from hub.ingest.batch import Batch
    from hub.ingest.store import IngestStore

    engine = db.connect(hub_url)
    store = IngestStore(engine)
    try:
        first, third, fifth = _event(1), _event(3), _event(5)
        dead_second = {**_event(2), "topic": "t", "payload": b"x", "reason": "bad data"}
        for key in ("kind", "at", "data"):
            dead_second.pop(key)
        store.write(Batch(events=[first, third, fifth], dead=[dead_second]))
        epoch = first["epoch"]
        assert store.advance_progress("s", "d", epoch) == 3  # 2 is filed, 4 is missing
        assert store.advance_progress("s", "d", epoch) == 3  # asked again: the same answer
        store.write(Batch(events=[_event(4)]))
        assert store.advance_progress("s", "d", epoch) == 5
        # A new store of the same device counts from 1 again under its own epoch.
        store.write(Batch(events=[_event(1, epoch="00000000000000bb")]))
        assert store.advance_progress("s", "d", "00000000000000bb") == 1
        assert store.advance_progress("s", "d", epoch) == 5
        assert datetime.now(UTC)  # the store took aware datetimes on this database
    finally:
        engine.dispose()


def test_an_event_stored_twice_is_kept_once(hub_url):
    from hub.ingest.batch import Batch
    from hub.ingest.store import IngestStore

    engine = db.connect(hub_url)
    store = IngestStore(engine)
    try:
        event = _event(1)
        store.write(Batch(events=[event]))
        store.write(Batch(events=[event]))
        with engine.connect() as conn:
            assert len(conn.execute(db.events.select()).all()) == 1
    finally:
        engine.dispose()


def test_an_old_store_with_data_is_upgraded_in_place(hub_url):
    engine = db.connect(hub_url, upgrade=False)
    try:
        db.migrate(engine, "0001")
        with engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO members (id, blocked) VALUES ('anna', false)")
            conn.exec_driver_sql("INSERT INTO grants (member_id, plan_id) VALUES ('anna', 'flex')")
        db.migrate(engine)
        with engine.connect() as conn:
            assert conn.execute(select(db.grants.c.member_id, db.grants.c.source)).all() == [
                ("anna", "plan")
            ]
    finally:
        engine.dispose()


def test_bookings_made_before_0015_count_on_their_sites_local_day(hub_url):
    """A booking stored before the pools existed gets its site's local day, so that it takes
    its desk in the new pool: 23:30 UTC on 1 March is 2 March in Berlin."""
    from datetime import UTC, date, datetime

    engine = db.connect(hub_url, upgrade=False)
    try:
        db.migrate(engine, "0014")
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO sites (id, timezone) VALUES ('s', 'Europe/Berlin')"))
            conn.execute(
                sa.table(
                    "bookings",
                    *(
                        sa.column(c)
                        for c in ("member_id", "site_id", "kind", "starts_at", "ends_at")
                    ),
                    sa.column("created_at"),
                )
                .insert()
                .values(
                    member_id="m",
                    site_id="s",
                    kind="day",
                    starts_at=datetime(2026, 3, 1, 23, 30, tzinfo=UTC),
                    ends_at=datetime(2026, 3, 2, 18, tzinfo=UTC),
                    created_at=datetime(2026, 2, 1, tzinfo=UTC),
                )
            )
        db.migrate(engine)
        with engine.connect() as conn:
            assert conn.execute(select(db.bookings.c.day)).scalar_one() == date(2026, 3, 2)
    finally:
        engine.dispose()


def _table(name: str, *columns: str) -> sa.TableClause:
    return sa.table(name, *(sa.column(c) for c in columns))


def test_rows_a_company_admin_made_for_staff_before_0017_are_the_companys(hub_url):
    """Before 0017 a booking or waiting entry did not say whose allowance paid for it: those a
    company admin made for someone else were their company's; a member's own (also an admin
    who is a member, booking for themselves) stay nobody's, as they could be private."""
    from datetime import UTC, date, datetime

    from alembic import command

    engine = db.connect(hub_url, upgrade=False)
    made = datetime(2026, 11, 1, tzinfo=UTC)
    users = [(1, "cora", "acme", None), (2, "carl", "acme", "carl"), (3, "bob", None, "bob")]
    # (made by, for): cora for bob, carl for bob, carl for himself, bob himself, the staff.
    rows = [(1, "bob"), (2, "bob"), (2, "carl"), (3, "bob"), (None, "bob")]
    try:
        db.migrate(engine, "0016")
        with engine.begin() as conn:
            user = _table("users", "id", "username", "company_id", "member_id", "password_hash")
            for column in ("role", "disabled", "created_at"):
                user.append_column(sa.column(column))
            conn.execute(
                user.insert(),
                [
                    dict(zip(("id", "username", "company_id", "member_id"), u, strict=True))
                    | {"password_hash": "x", "role": "member", "disabled": False}
                    | {"created_at": made}
                    for u in users
                ],
            )
            booking = _table("bookings", "id", "member_id", "booked_by", "site_id", "kind")
            for column in ("starts_at", "ends_at", "created_at"):
                booking.append_column(sa.column(column))
            conn.execute(
                booking.insert(),
                [
                    {"id": i, "member_id": member, "booked_by": by, "site_id": "s", "kind": "desk"}
                    | {"starts_at": made, "ends_at": made, "created_at": made}
                    for i, (by, member) in enumerate(rows, 1)
                ],
            )
            entry = _table("waiting_list", "id", "member_id", "created_by", "site_id", "day")
            for column in ("part", "created_at"):
                entry.append_column(sa.column(column))
            conn.execute(
                entry.insert(),
                [
                    {"id": i, "member_id": member, "created_by": by, "site_id": "s"}
                    | {"day": date(2026, 11, 2), "part": "day", "created_at": made}
                    for i, (by, member) in enumerate(rows, 1)
                ],
            )
        expected = ["acme", "acme", None, None, None]
        for _ in range(2):  # up, down and up again
            db.migrate(engine)
            with engine.connect() as conn:
                b, w = db.bookings.c, db.waiting_list.c
                assert list(conn.scalars(select(b.company_id).order_by(b.id))) == expected
                assert list(conn.scalars(select(w.company_id).order_by(w.id))) == expected
            cfg = db.alembic_config()
            with engine.begin() as conn:
                cfg.attributes["connection"] = conn
                command.downgrade(cfg, "0016")
    finally:
        engine.dispose()


def test_a_release_added_as_a_rollback_before_0021_is_held_as_one(hub_url):
    """Before 0021 a rollback was added as a release of its own: it is kept as the rollback
    from the version it names, its manifest as it was signed."""
    from datetime import UTC, datetime

    engine = db.connect(hub_url, upgrade=False)
    made = datetime(2026, 12, 8, tzinfo=UTC)
    columns = ("version", "manifest", "files", "bytes", "rollback_from", "created_at")
    try:
        db.migrate(engine, "0020")
        with engine.begin() as conn:
            conn.execute(
                _table("releases", *columns).insert(),
                [
                    dict(zip(columns, ("1.5.0", b"plain", 1, 1, None, made), strict=True)),
                    dict(zip(columns, ("1.4.2", b"back", 1, 1, "1.5.0", made), strict=True)),
                ],
            )
        db.migrate(engine)
        b = db.release_rollbacks.c
        with engine.connect() as conn:
            held = conn.execute(select(b.version, b.rollback_from, b.manifest)).all()
            assert [(v, f, bytes(m)) for v, f, m in held] == [("1.4.2", "1.5.0", b"back")]
            assert conn.scalar(select(sa.func.count()).select_from(db.releases)) == 2
    finally:
        engine.dispose()
