"""A full state directory (a real, small tmpfs): the door still lets members in, the fault
reaches the hub in the door's state over a real mosquitto, and everything the door kept in
memory is written, in order, once there is room again."""

from __future__ import annotations

import errno
import os
import sqlite3
import subprocess
from pathlib import Path

import pytest

from edge.agent.access_list import applied_version
from sim.broker import LocalBroker
from tests.support.edge import ANNA, STRANGER, rises
from tests.support.healing import RecordingHub, healing_door
from tests.support.waiting import wait_for

STRIKE = 17


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB tmpfs of its own: filling it fills nothing else."""
    mount = tmp_path / "state"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True
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
    return [(e.kind, e.data) for e in hub.events() if e.epoch == epoch]


def test_a_full_state_directory_is_a_reported_fault_and_heals_itself(
    tmp_path, small_disk, hub, mock_pins
):
    anna = hub.add_member("anna", ANNA)
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
        assert wait_for(lambda: len(agent.guard.kept) == 3, 3)
        assert [k for k, _ in door_events(hub, epoch)] == []  # ... not through the outbox
        # Room again: the door notices by itself, writes what it kept, and clears the fault.
        filler.unlink()
        assert wait_for(lambda: hub.store_fault() is None, 10)
        assert wait_for(lambda: len(door_events(hub, epoch)) == 4, 10)
        kinds, data = zip(*door_events(hub, epoch), strict=True)
        assert kinds == ("door.decision", "device.fault", "door.decision", "device.fault")
        assert data[0]["card"] == anna and data[0]["allowed"] is True
        assert data[1]["fault"].startswith("cannot write")
        assert data[2]["allowed"] is False and data[2]["reason"] == "unknown_card"
        assert data[3].get("fault") is None
        assert wait_for(lambda: agent.store.pending_events() == [], 10)
    assert hub.dead_letters() == []
