"""A full state directory (a real, small tmpfs): the door still lets members in, the fault
reaches the hub in the door's state over a real mosquitto, and everything the door kept in
memory is written, in order, once there is room again; a door restarted on the full disk
starts in the room it kept."""

from __future__ import annotations

import errno
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.agent.access_list import applied_version
from edge.agent.reserve import FULL, RESERVE_BYTES, reserve_path
from hafen.cards import card_hash
from sim.broker import LocalBroker
from tests.support.edge import ANNA, CARD_KEY, STRANGER, rises
from tests.support.healing import RecordingHub, healing_door
from tests.support.waiting import wait_for

STRIKE = 17


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB tmpfs of its own: filling it fills nothing else."""
    yield from _tmpfs(tmp_path, "4m")


@pytest.fixture
def larger_disk(tmp_path):
    """A 16 MiB tmpfs of its own, for a store larger than the reserve."""
    yield from _tmpfs(tmp_path, "16m")


def _tmpfs(tmp_path: Path, size: str) -> Iterator[Path]:
    mount = tmp_path / "state"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        if subprocess.run(["umount", str(mount)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mount)], check=True)


@pytest.fixture
def hub(tmp_path, hub_url):
    with LocalBroker(tmp_path / "broker") as broker:
        hub = RecordingHub(tmp_path, broker, url=hub_url)
        hub.start()
        hub.register()
        yield hub
        hub.stop()


def fill(directory: Path) -> Path:
    """Write a file until the file system has no room left."""
    filler = directory / "filler"
    with filler.open("wb") as f:
        try:
            while True:
                f.write(bytes(65536))
                f.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


def door_events(hub: RecordingHub, epoch: str) -> list[tuple[str, dict]]:
    """The door's events at the hub, but for the disk's faults (edge.agent.reserve)."""
    events = [e for e in hub.events() if e.epoch == epoch]
    return [(e.kind, e.data) for e in events if e.data.get("component") != "disk"]


def test_a_full_state_directory_is_a_reported_fault_and_heals_itself(
    tmp_path, small_disk, hub, mock_pins
):
    anna = hub.add_member("anna", ANNA)
    stranger = card_hash(CARD_KEY, STRANGER)
    hub.publisher.publish_site("leipzig-ost")
    with healing_door(tmp_path, hub, store=small_disk / "edge.db", unlock_seconds=0.3) as (
        agent,
        card,
        _,
    ):
        assert wait_for(lambda: applied_version(agent.store) == 1, 10)
        epoch = agent.store.epoch
        # The log is cut back to nothing, so the next write must find room on the disk.
        log = sqlite3.connect(small_disk / "edge.db")
        assert log.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
        log.close()
        filler = fill(small_disk)
        assert card.present(ANNA) is not None
        assert wait_for(lambda: rises(mock_pins.pin(STRIKE)) == 1, 3), "a member was locked out"
        assert wait_for(lambda: mock_pins.pin(STRIKE).state is False, 2)
        assert card.present(STRANGER) is not None
        # The hub hears of it through the door's state (MQTT needs no disk) ...
        assert wait_for(lambda: (hub.store_fault() or "").startswith("cannot write"), 10)
        assert "full" in (hub.store_fault() or "")
        assert wait_for(lambda: disk_fault(hub) == FULL, 10)
        assert wait_for(lambda: len(agent.guard.kept) >= 3, 3)  # and the disk's fault, maybe
        assert [k for k, _ in door_events(hub, epoch)] == []  # ... not through the outbox
        # Room again: the door notices by itself, writes what it kept, and clears the fault.
        filler.unlink()
        assert wait_for(lambda: hub.store_fault() is None and disk_fault(hub) is None, 10)
        assert wait_for(lambda: len(door_events(hub, epoch)) == 4, 10)
        events = door_events(hub, epoch)
        decisions = [data for kind, data in events if kind == "door.decision"]
        assert [(d["card"], d["allowed"]) for d in decisions] == [(anna, True), (stranger, False)]
        # The fault is written where it began (the first write that failed: the tap, or the
        # disk's own fault just before it), and its end after everything kept.
        faults = [data.get("fault") for kind, data in events if kind == "device.fault"]
        assert len(faults) == 2 and str(faults[0]).startswith("cannot write") and not faults[1]
        assert events[-1] == ("device.fault", {"component": "store"})
        assert events.index(("device.fault", {"component": "store", "fault": faults[0]})) <= 1
        assert wait_for(lambda: agent.store.pending_events() == [], 10)
    assert hub.dead_letters() == []


def test_a_door_restarted_on_a_full_disk_starts_in_the_room_it_kept(
    tmp_path, small_disk, hub, mock_pins
):
    """Before: SQLite could not open the store ("disk I/O error": no room for its shared
    memory), and the agent failed to start, again and again, in its fail state."""
    anna = hub.add_member("anna", ANNA)
    hub.publisher.publish_site("leipzig-ost")
    store = small_disk / "edge.db"
    with healing_door(tmp_path, hub, store=store) as (agent, _card, _):
        assert wait_for(lambda: applied_version(agent.store) == 1, 10)
    assert reserve_path(store).stat().st_size == RESERVE_BYTES
    filler = fill(small_disk)  # and then the power goes
    with healing_door(tmp_path, hub, store=store, unlock_seconds=0.3) as (agent, card, _):
        assert not reserve_path(store).exists()
        assert card.present(ANNA) is not None
        assert wait_for(lambda: rises(mock_pins.pin(STRIKE)) == 1, 3)
        # The hub hears that the disk is all but full, before any write fails.
        assert wait_for(lambda: disk_fault(hub) == FULL, 10)
        assert wait_for(lambda: any(e.data.get("card") == anna for e in hub.events()), 10)
        filler.unlink()
        assert wait_for(lambda: disk_fault(hub) is None, 10)
        assert reserve_path(store).stat().st_size == RESERVE_BYTES


def disk_fault(hub: RecordingHub) -> str | None:
    online = [s for s in hub.states if s.online]
    return online[-1].faults.get("disk") if online else None


def test_a_damaged_store_on_a_full_disk_still_gives_up_its_events(larger_disk):
    """Salvage reads a copy of the damaged file, which a full disk has no room for. Before:
    the copy failed and not one undelivered event was salvaged (all counted lost), though the
    file could still be read where it lay."""
    from edge.agent.recovery import open_store
    from edge.agent.reserve import keep_reserve
    from tests.support.damage import build_store, garble_cards_page

    path = larger_disk / "edge.db"
    before = build_store(path, events=200)
    db = sqlite3.connect(path)  # a store larger than the room the reserve gives back
    db.execute("CREATE TABLE ballast (data BLOB)")
    db.execute("INSERT INTO ballast VALUES (zeroblob(3 * 1024 * 1024))")
    db.commit()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    assert path.stat().st_size > 3 * RESERVE_BYTES
    garble_cards_page(path)
    assert keep_reserve(path)
    fill(larger_disk)
    store, recovery = open_store(path, "normal")
    try:
        assert recovery is not None
        rows = store.conn.execute("SELECT event_id FROM salvaged ORDER BY seq").fetchall()
        assert [event_id for (event_id,) in rows] == before["event_ids"]
        assert recovery.salvaged == 200 and recovery.lost == 0
    finally:
        store.close()
