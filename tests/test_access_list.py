"""Applying access lists to the edge store: atomic, versioned, hash-only; document validation."""

from __future__ import annotations

import json
import sqlite3
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from edge.agent.access_list import AccessListRefused, applied_version, apply_snapshot
from edge.agent.store import MIGRATIONS, EdgeStore
from hafen.acl import AccessList
from hafen.cards import card_hash, parse_uid
from tests.support.edge import CARD_KEY_HEX

SITE = "leipzig-ost"
TZ = ZoneInfo("Europe/Berlin")
KEY = bytes.fromhex(CARD_KEY_HEX)
UID_A = "04A1B2C3D4E5F6"
UID_B = "04:11:22:33:44:55:66"
HASH_C = card_hash(KEY, parse_uid("DEADBEEF"))
#: The same card twice: once by UID, once by its hash.
DUPLICATE_CARDS = [
    {"uid": UID_A, "member": "m1"},
    {"hash": card_hash(KEY, parse_uid(UID_A)), "member": "m3"},
]
TABLES = ("meta", "plans", "members", "grants", "cards")


@pytest.fixture
def store(tmp_path):
    s = EdgeStore(tmp_path / "edge.db", "normal")
    yield s
    s.close()


def acl_doc(version: int = 1, site: str = SITE, **changes) -> dict:
    doc = {
        "site": site,
        "version": version,
        "plans": [
            {"id": "flex"},
            {
                "id": "daytime",
                "sites": [SITE],
                "windows": [{"days": ["mon", "fri"], "start": "08:00", "end": "18:00"}],
            },
        ],
        "members": [
            {"id": "m1", "grants": [{"plan": "flex", "valid_until": "2026-12-31"}]},
            {"id": "m2", "blocked": True, "grants": [{"plan": "daytime"}]},
            {
                "id": "m3",
                "grants": [
                    {
                        "sites": [SITE],
                        "valid_from": "2026-05-01T09:00:00+02:00",
                        "valid_until": "2026-05-01T17:00:00+02:00",
                    }
                ],
            },
        ],
        "cards": [
            {"uid": UID_A, "member": "m1"},
            {"uid": UID_B, "member": "m2", "revoked": True},
            {"hash": HASH_C, "member": "m3"},
        ],
    }
    doc.update(changes)
    return doc


def apply(store, doc: dict, site: str = SITE) -> int:
    return apply_snapshot(store, AccessList.model_validate(doc), site, TZ, KEY)


def snapshot(store) -> dict[str, list[tuple]]:
    return {t: sorted(store.conn.execute(f"SELECT * FROM {t}").fetchall()) for t in TABLES}


# --- applying -------------------------------------------------------------------------------------


def test_fresh_store_has_version_zero(store):
    assert applied_version(store) == 0
    tables = snapshot(store)
    assert [key for key, _ in tables.pop("meta")] == ["epoch"]  # a new store's own name
    assert all(rows == [] for rows in tables.values())


def test_apply_stores_the_list(store):
    assert apply(store, acl_doc()) == 3
    assert applied_version(store) == 1
    conn = store.conn
    meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    assert (meta["acl_version"], meta["acl_site"]) == ("1", SITE)
    assert sorted(conn.execute("SELECT hash, member_id, revoked FROM cards").fetchall()) == sorted(
        [
            (card_hash(KEY, parse_uid(UID_A)), "m1", 0),
            (card_hash(KEY, parse_uid(UID_B)), "m2", 1),
            (HASH_C, "m3", 0),
        ]
    )
    assert sorted(conn.execute("SELECT id, blocked FROM members").fetchall()) == [
        ("m1", 0),
        ("m2", 1),
        ("m3", 0),
    ]
    plans = dict(conn.execute("SELECT id, sites FROM plans").fetchall())
    assert plans == {"flex": None, "daytime": json.dumps([SITE])}
    windows = conn.execute("SELECT windows FROM plans WHERE id = 'daytime'").fetchone()[0]
    assert json.loads(windows) == [{"days": [0, 4], "start": "08:00", "end": "18:00"}]
    grants = sorted(
        conn.execute(
            "SELECT member_id, plan_id, sites, valid_from_us, valid_until_us FROM grants"
        ).fetchall()
    )
    assert grants == [
        # "2026-12-31" runs until 2027-01-01T00:00+01:00 = 2026-12-31T23:00Z.
        ("m1", "flex", None, None, 1798758000_000000),
        ("m2", "daytime", None, None, None),
        ("m3", None, json.dumps([SITE]), 1777618800_000000, 1777647600_000000),
    ]


def test_newer_version_replaces_everything(store):
    apply(store, acl_doc())
    doc = acl_doc(
        version=5,
        plans=[{"id": "night"}],
        members=[{"id": "m9", "grants": [{"plan": "night"}]}],
        cards=[{"hash": HASH_C, "member": "m9"}],
    )
    assert apply(store, doc) == 1
    assert applied_version(store) == 5
    after = snapshot(store)
    assert after["cards"] == [(HASH_C, "m9", 0)]
    assert after["members"] == [("m9", 0)]
    assert after["plans"] == [("night", None, None)]
    assert [row[1:3] for row in after["grants"]] == [("m9", "night")]


def test_a_snapshot_swaps_whole_families_and_leaves_no_tables_behind(store):
    """The swap renames tables instead of dropping 100,000 rows under the write lock: the
    foreign keys must follow each family, and the retired tables must go afterwards."""
    tables_of_a_fresh_store = sorted(store.table_names())
    many = [{"id": f"m{i}", "grants": [{"plan": "flex"}]} for i in range(600)]
    cards = [{"hash": f"{i:032x}", "member": f"m{i}"} for i in range(600)]
    apply(store, acl_doc(members=many, cards=cards))
    apply(store, acl_doc(version=2, members=many[:300], cards=cards[:300]))
    assert sorted(store.table_names()) == tables_of_a_fresh_store
    assert {"cards", "grants", "members", "plans"} <= set(tables_of_a_fresh_store)
    assert store.conn.execute("PRAGMA foreign_key_check").fetchall() == []
    references = {
        table: {row[2] for row in store.conn.execute(f"PRAGMA foreign_key_list({table})")}
        for table in ("grants", "cards")
    }
    assert references == {"grants": {"members", "plans"}, "cards": {"members"}}
    # The live cards still point at the live members.
    with pytest.raises(sqlite3.IntegrityError), store.write() as conn:
        conn.execute("INSERT INTO cards VALUES ('ab', 'nobody', 0)")


def test_tables_a_dead_process_left_mid_swap_are_dropped_by_the_next_snapshot(store):
    dead = 2**22 + 12345  # above the kernel's default pid_max: no such process
    with store.write() as conn:
        conn.execute(f"CREATE TABLE cards_old_{dead}_v7 (hash TEXT PRIMARY KEY)")
        conn.execute(f"CREATE TABLE plans_next_{dead} (id TEXT PRIMARY KEY)")
    apply(store, acl_doc())
    assert not [t for t in store.table_names() if "_old_" in t or "_next_" in t]


def test_empty_list_applies(store):
    apply(store, acl_doc())
    assert apply(store, {"site": SITE, "version": 2}) == 0
    assert applied_version(store) == 2
    assert all(snapshot(store)[t] == [] for t in ("plans", "members", "grants", "cards"))


def test_only_hashes_reach_the_disk(store, tmp_path):
    apply(store, acl_doc())
    files = [p for p in tmp_path.iterdir() if p.name.startswith("edge.db")]
    assert {p.name for p in files} >= {"edge.db", "edge.db-wal"}
    data = b"".join(p.read_bytes() for p in files)
    assert card_hash(KEY, parse_uid(UID_A)).encode() in data
    for uid in (UID_A, UID_B):
        raw = parse_uid(uid)
        for needle in (raw, raw.hex().encode(), raw.hex().upper().encode(), uid.encode()):
            assert needle not in data, needle


# --- refusals change nothing ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (acl_doc(version=2, site="halle-mitte"), "is for site 'halle-mitte'"),
        (acl_doc(version=1), "version 1 is not newer than applied version 1"),
        (acl_doc(version=1, members=[], cards=[]), "version 1 is not newer"),
        (
            acl_doc(version=2, cards=[{"uid": "04A1B2", "member": "m1"}]),
            "a card UID has 4, 7, 8 or 10 bytes, this one has 3",
        ),
        (
            acl_doc(version=2, cards=[{"uid": "04ZZB2C3", "member": "m1"}]),
            "a card UID is written in hex digits",
        ),
    ],
)
def test_refused_list_changes_nothing(store, doc, message):
    apply(store, acl_doc(version=1))
    before = snapshot(store)
    with pytest.raises(AccessListRefused, match=message):
        apply(store, doc)
    assert snapshot(store) == before
    assert applied_version(store) == 1
    assert store.conn.in_transaction is False


def test_older_version_is_refused(store):
    apply(store, acl_doc(version=7))
    before = snapshot(store)
    with pytest.raises(AccessListRefused, match="not newer than applied version 7"):
        apply(store, acl_doc(version=6, members=[], cards=[]))
    assert snapshot(store) == before


def test_invalid_uid_refuses_the_whole_list_even_on_a_fresh_store(store):
    cards = [{"uid": UID_A, "member": "m1"}, {"uid": "not-a-uid", "member": "m1"}]
    with pytest.raises(AccessListRefused, match="uid is invalid"):
        apply(store, acl_doc(cards=cards))
    assert applied_version(store) == 0
    tables = snapshot(store)
    assert [key for key, _ in tables.pop("meta")] == ["epoch"]
    assert all(rows == [] for rows in tables.values())


def test_duplicate_card_leaves_the_store_unchanged(store):
    apply(store, acl_doc(version=1))
    before = snapshot(store)
    with pytest.raises(AccessListRefused):
        apply(store, acl_doc(version=2, cards=DUPLICATE_CARDS))
    assert snapshot(store) == before
    assert store.conn.in_transaction is False


def test_duplicate_card_is_refused(store):
    with pytest.raises(AccessListRefused, match="more than once"):
        apply(store, acl_doc(cards=DUPLICATE_CARDS))


# --- document validation --------------------------------------------------------------------------


def one_grant(**grant) -> dict:
    return {"members": [{"id": "m1", "grants": [grant]}]}


def one_window(start: str, end: str, days: list | None = None) -> dict:
    window = {"days": ["mon"] if days is None else days, "start": start, "end": end}
    return {"plans": [{"id": "flex", "windows": [window]}]}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (one_grant(plan="gold"), "member m1 has a grant of unknown plan gold"),
        (
            {"members": [{"id": "m1"}, {"id": "m2"}, {"id": "m1"}]},
            "members: id m1 appears more than once",
        ),
        ({"plans": [{"id": "flex"}, {"id": "flex"}]}, "plans: id flex appears more than once"),
        ({"cards": [{"hash": HASH_C, "member": "m7"}]}, "a card belongs to unknown member m7"),
        (one_grant(valid_from="2026-01-01"), "a grant without a plan must name its sites"),
        (one_grant(plan="flex", valid_from="2026-01-01T00:00:00"), "valid_from needs a UTC offset"),
        (one_grant(plan="flex", valid_until="2026-01-01T08:00"), "valid_until needs a UTC offset"),
        (one_window("08:00", "08:00"), "start and end are equal: the window would be empty"),
        (one_window("00:00", "00:00"), "the window would be empty"),
        (one_window("24:00", "08:00"), "a window cannot start at 24:00"),
        (one_window("8:00", "18:00"), "'8:00' is not a time of day written HH:MM"),
        (one_window("08:00", "24:01"), "'24:01' is not a time of day"),
        (one_window("08:00", "18:00", days=[]), "at least 1 item"),
        (one_window("08:00", "18:00", days=["monday"]), "days.0"),
        ({"cards": [{"member": "m1"}]}, "a card has exactly one of hash and uid"),
        ({"cards": [{"hash": HASH_C, "uid": UID_A, "member": "m1"}]}, "exactly one of hash"),
        ({"cards": [{"hash": HASH_C.upper(), "member": "m1"}]}, "should match pattern"),
        ({"version": 0}, "greater than or equal to 1"),
        ({"colour": "blue"}, "Extra inputs are not permitted"),
    ],
)
def test_access_list_validation(changes, message):
    doc = acl_doc(**changes)
    if "cards" not in changes:
        doc["cards"] = []
    with pytest.raises(ValidationError, match=message):
        AccessList.model_validate(doc)


def test_valid_document_round_trips_through_json():
    acl = AccessList.model_validate(acl_doc())
    again = AccessList.model_validate_json(acl.model_dump_json())
    assert again == acl
    assert [m.id for m in again.members] == ["m1", "m2", "m3"]


# --- the store itself -----------------------------------------------------------------------------


def test_journal_mode_is_wal(store):
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_migrations_are_idempotent(tmp_path):
    path = tmp_path / "edge.db"
    first = EdgeStore(path)
    assert first.conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    apply(first, acl_doc(version=3))
    first.close()
    second = EdgeStore(path)
    try:
        assert second.conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert second.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert applied_version(second) == 3
        assert second.conn.execute("SELECT count(*) FROM cards").fetchone()[0] == 3
        assert second.integrity_ok() is True
    finally:
        second.close()


def test_two_open_stores_on_one_file(tmp_path):
    path = tmp_path / "edge.db"
    first, second = EdgeStore(path), EdgeStore(path)
    try:
        apply(first, acl_doc(version=2))
        assert applied_version(second) == 2
        with pytest.raises(AccessListRefused, match="not newer"):
            apply(second, acl_doc(version=2))
        assert second.conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    finally:
        first.close()
        second.close()
