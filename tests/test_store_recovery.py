"""A damaged store at start: moved aside, a fresh store with a new epoch, the readable events
salvaged under their own identity, the fault reported, cards decided by the fail mode."""

from __future__ import annotations

import signal
import sqlite3
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.agent.agent import EdgeAgent
from edge.agent.recovery import KEEP_ASIDE, open_store, recover
from edge.agent.remote import CommandRefused, CommandVerifier
from edge.agent.store import EdgeStore
from hub.commands import command_message
from sim.card_emulator import EmulatedCard
from sim.door import shut_door
from tests.support.agent_process import start_agent, write_config
from tests.support.damage import CARDS, DAMAGE, build_store, garble_page, pages_of, zero_header
from tests.support.edge import free_udp_port, make_config, outbox, rises
from tests.support.waiting import wait_for

STRIKE = 17
MEMBER = next(iter(CARDS))  # m0: a member in the list the damaged store held
HUB_KEY = Ed25519PrivateKey.generate()


@contextmanager
def started(tmp_path: Path, **door):
    """The agent as the runner starts it: the store opened (and recovered) first."""
    cfg = make_config(tmp_path, **door)
    store, recovery = open_store(cfg.store.path, cfg.store.synchronous)
    agent = EdgeAgent(cfg, store)
    agent.start()
    shut_door(cfg.door)
    try:
        yield agent, EmulatedCard(cfg.reader.path), recovery
    finally:
        agent.stop()
        store.close()


def salvaged(store: EdgeStore) -> list[tuple[str, int, str]]:
    return store.conn.execute("SELECT epoch, seq, event_id FROM salvaged ORDER BY id").fetchall()


def decisions(store: EdgeStore) -> list[dict]:
    return [body for kind, body in outbox(store) if kind == "door.decision"]


@pytest.mark.parametrize("kind", DAMAGE)
def test_a_damaged_store_is_moved_aside_and_the_door_starts_fresh(tmp_path, mock_pins, kind):
    path = tmp_path / "edge.db"
    before = build_store(path, events=40)
    damage, readable = DAMAGE[kind]
    damage(path)
    with started(tmp_path) as (agent, card, recovery):
        assert recovery is not None
        aside = tmp_path / recovery.aside
        assert aside.exists() and path.exists()
        assert agent.store.epoch != before["epoch"]
        # Reported on the fault board (the door's state carries it) and as an event.
        assert "recovered" in agent.faults.current()["store"]
        faults = [body for k, body in outbox(agent.store) if k == "device.fault"]
        assert faults[0]["component"] == "store" and recovery.aside in faults[0]["fault"]
        # The readable events are kept under the epoch and seq the damaged store gave them.
        rows = salvaged(agent.store)
        if readable:
            assert {epoch for epoch, _, _ in rows} == {before["epoch"]}
            read = [(seq, event_id) for _, seq, event_id in rows if event_id in before["event_ids"]]
            assert read, "nothing salvaged"
            assert all(before["event_ids"][seq - 1] == event_id for seq, event_id in read)
            if kind != "truncated":  # the list's pages are damaged, not the outbox's
                assert [seq for seq, _ in read] == list(range(1, 41))
            assert recovery.salvaged == len(read) and recovery.lost == 40 - len(read)
        else:
            assert rows == [] and recovery.salvaged == 0
        # No list: a fail-secure door refuses, saying why, and stays locked.
        assert card.present(MEMBER) is not None
        assert wait_for(lambda: decisions(agent.store), 3)
        assert decisions(agent.store)[0]["reason"] == "no_access_list"
        assert decisions(agent.store)[0]["allowed"] is False
        assert rises(mock_pins.pin(STRIKE)) == 0


def test_a_fail_safe_door_without_a_list_lets_cards_in(tmp_path, mock_pins):
    path = tmp_path / "edge.db"
    build_store(path)
    zero_header(path)
    with started(tmp_path, fail_mode="safe", unlock_seconds=0.3) as (agent, card, _):
        assert card.present(MEMBER) is not None
        assert wait_for(lambda: decisions(agent.store), 3)
        [decision] = decisions(agent.store)
        assert decision["allowed"] is True and decision["reason"] == "no_access_list"
        # Fail-safe: the relay is energised to lock, so unlocking drops it.
        assert wait_for(lambda: mock_pins.pin(STRIKE).state is False, 2)


def test_the_agent_process_recovers_a_zeroed_store_instead_of_exiting(tmp_path):
    """Before: "file is not a database", exit 1, and systemd restarted it into the same."""
    config = write_config(tmp_path, free_udp_port())
    build_store(tmp_path / "edge.db")
    zero_header(tmp_path / "edge.db")
    log = tmp_path / "agent.log"
    agent = start_agent(config, tmp_path / "pins.log", log)
    try:
        assert agent.poll() is None
        assert "is damaged (not a database" in log.read_text()
        assert "40 events salvaged" in log.read_text()
    finally:
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(10) == 0
    assert list(tmp_path.glob("edge.db.corrupt-*"))


def test_an_interrupted_recovery_is_finished_at_the_next_start(tmp_path):
    # A recovery built its fresh store, and the power went before the swap.
    first = tmp_path / "first"
    first.mkdir()
    build_store(first / "edge.db")
    zero_header(first / "edge.db")
    done = recover(first / "edge.db", "test")
    fresh_epoch = EdgeStore(first / "edge.db").epoch
    here = tmp_path / "edge.db"
    build_store(here)
    zero_header(here)
    here.with_name("edge.db-wal").write_bytes(b"a log that belongs to the damaged file")
    (first / "edge.db").rename(tmp_path / "edge.db.fresh")
    store, recovery = open_store(here)
    try:
        assert recovery is None  # nothing more to do than finish the swap
        assert store.epoch == fresh_epoch
        aside = tmp_path / done.aside
        assert aside.exists() and aside.with_name(aside.name + "-wal").exists()
        assert not (tmp_path / "edge.db.fresh").exists()
        assert store.conn.execute("PRAGMA quick_check").fetchone()[0] == "ok"
    finally:
        store.close()


def test_only_the_newest_damaged_files_are_kept(tmp_path):
    path = tmp_path / "edge.db"
    build_store(path, events=2)
    names = []
    for _ in range(KEEP_ASIDE + 2):
        zero_header(path)
        names.append(recover(path, "test").aside)
    kept = sorted(p.name for p in tmp_path.glob("edge.db.corrupt-*") if p.name in names)
    assert kept == sorted(names)[-KEEP_ASIDE:]


def unlock(now: datetime) -> bytes:
    return command_message(HUB_KEY, "leipzig-ost", "front-door", "unlock", {"seconds": 5}, now)[1]


def verifier(store: EdgeStore) -> CommandVerifier:
    return CommandVerifier("leipzig-ost", "front-door", [HUB_KEY.public_key()], store)


def test_the_boot_counter_and_the_commands_carried_out_are_carried_over(tmp_path):
    path = tmp_path / "edge.db"
    build_store(path, boot="41")
    now = datetime.now(UTC)
    payload = unlock(now)
    store = EdgeStore(path)
    verifier(store).verify("unlock", payload, now)
    store.close()
    zero_header(path)
    store, recovery = open_store(path)
    try:
        assert recovery is not None and recovery.carried == ["boot", "commands_seen"]
        assert store.get_meta("boot") == "41"  # session numbers keep growing for the hub
        with pytest.raises(CommandRefused, match="already carried out"):
            verifier(store).verify("unlock", payload, now + timedelta(seconds=30))
    finally:
        store.close()


def test_a_lost_meta_page_makes_commands_from_before_the_recovery_void(tmp_path):
    path = tmp_path / "edge.db"
    build_store(path, boot="41")
    now = datetime.now(UTC)
    payload = unlock(now)
    store = EdgeStore(path)
    verifier(store).verify("unlock", payload, now)
    store.close()
    [meta_page] = pages_of(path, "meta")
    garble_page(path, meta_page)
    store, recovery = open_store(path)
    try:
        assert recovery is not None and recovery.carried == []
        # Without its epoch no event can be sent where the hub would know it: counted lost.
        assert recovery.salvaged == 0 and recovery.lost == 40
        assert int(store.get_meta("boot") or 0) > 41  # counted on from the time instead
        with pytest.raises(CommandRefused, match="older than the door's store"):
            verifier(store).verify("unlock", payload, now + timedelta(seconds=30))
        later = datetime.now(UTC) + timedelta(seconds=1)
        verifier(store).verify("unlock", unlock(later), later)  # new ones are carried out
    finally:
        store.close()


def test_a_sound_store_left_by_a_crash_is_opened_as_it_is(tmp_path):
    before = build_store(tmp_path / "edge.db")
    # What a crash leaves: the file and a write-ahead log with a transaction in it.
    writer = sqlite3.connect(tmp_path / "edge.db")
    writer.execute("PRAGMA wal_autocheckpoint=0")
    writer.execute("INSERT INTO meta VALUES ('note', 'in the log only')")
    writer.commit()
    crashed = tmp_path / "crashed"
    crashed.mkdir()
    for name in ("edge.db", "edge.db-wal"):
        (crashed / name).write_bytes((tmp_path / name).read_bytes())
    writer.close()
    store, recovery = open_store(crashed / "edge.db")
    try:
        assert recovery is None and store.epoch == before["epoch"]
        assert store.get_meta("note") == "in the log only"
        assert len(store.pending_events()) == 40
    finally:
        store.close()


def test_a_simulated_door_leaves_a_damaged_store_to_the_agent(tmp_path):
    """`hafen edge run --simulate` loads a demo list first: on a damaged store it must not
    fail before the agent can recover it (it did: "file is not a database")."""
    from sim.edge_site import ensure_demo_access_list

    cfg = make_config(tmp_path)
    build_store(cfg.store.path)
    zero_header(cfg.store.path)
    damaged = cfg.store.path.read_bytes()
    ensure_demo_access_list(cfg)
    assert cfg.store.path.read_bytes() == damaged
