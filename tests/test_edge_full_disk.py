"""A block sent while the door's state directory is full is not lost: the door keeps the list,
says it is behind and has a fault, and enforces the block once there is space again. On a real
full file system (a small tmpfs, which needs root to mount), a real mosquitto and hub."""

from __future__ import annotations

import errno
import os
import sqlite3
import subprocess
import time

import pytest

from edge.agent.remote import FAULT, RETRY_MAX
from hafen import protocol
from hub.services.members import set_blocked
from sim.broker import LocalBroker
from tests.support.network import TestHub, acl_version, connected_edge
from tests.support.refusals import ANNA, Client
from tests.support.waiting import wait_for

SITE, DEVICE = "leipzig-ost", "door-1"
BEN = bytes.fromhex("04B2C3D4E5F607")


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MB file system of its own for the door's state directory."""
    mount = tmp_path / "state"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(directory) -> None:
    """Write a file until the file system has no byte left."""
    fd = os.open(directory / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        for size in (65536, 4096, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)


def test_a_block_sent_while_the_disk_is_full_is_enforced_once_space_is_back(
    tmp_path, mock_pins, small_disk
):
    with LocalBroker(tmp_path / "broker") as broker:
        hub = TestHub(tmp_path, broker).start()
        try:
            hub.add_site(SITE)
            hub.add_member("anna", ANNA)
            hub.add_member("ben", BEN)
            hub.publisher.publish_site(SITE)
            store = {"path": str(small_disk / "edge.db"), "synchronous": "normal"}
            with connected_edge(tmp_path, hub, sections={"store": store}) as (agent, card):
                assert wait_for(lambda: acl_version(agent) == 1, 10)
                states = Client(broker.port).subscribe(protocol.state_topic(SITE, DEVICE))
                # Everything written so far is in the database file, the log empty: the next
                # write has to grow the log, and the disk has no room left for it.
                db = sqlite3.connect(small_disk / "edge.db")
                assert wait_for(
                    lambda: db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0, 5
                )
                db.close()
                fill(small_disk)

                set_blocked(hub.engine, hub.publisher, "anna", True)  # a delta, version 2
                assert wait_for(lambda: FAULT in agent.faults.current(), 10)
                assert "full" in agent.faults.current()[FAULT]
                # The door says it is behind, so the hub answers it with a snapshot (which
                # cannot be written either, and waits as well).
                assert wait_for(lambda: _last(states).seen_version == 2, 10)
                assert _last(states).acl_version == 1 and FAULT in _last(states).faults
                assert acl_version(agent) == 1
                time.sleep(1.5)  # a retry or two on the full disk: still kept

                os.remove(small_disk / "filler")
                freed = time.monotonic()
                assert wait_for(lambda: acl_version(agent) == 2, RETRY_MAX + 5)
                took = time.monotonic() - freed
                assert took <= RETRY_MAX + 1, took
                # The fault clears just after the list is stored (the same thread, a moment on).
                assert wait_for(lambda: FAULT not in agent.faults.current(), 5)
                assert wait_for(lambda: (s := _last(states)).acl_version == 2 and not s.faults, 5)

                before = len(hub.events())
                card.present(ANNA)
                assert wait_for(lambda: len(hub.events()) == before + 1, 10)
                decision = hub.events()[-1]
                assert decision.data["allowed"] is False and decision.data["reason"] == "blocked"
        finally:
            hub.stop()


def _last(states: Client) -> protocol.DeviceState:
    return states.states()[-1]


def test_a_command_while_the_disk_is_full_gets_an_answer(tmp_path, mock_pins, small_disk):
    """The door keeps the ids of the commands it carried out in its store (no replays after a
    restart). Before: on a full disk that write raised out of the loop's command handling, so
    an operator's unlock got no answer at all, and its id stayed marked as carried out."""
    from hub.commands import command_message

    with LocalBroker(tmp_path / "broker") as broker:
        hub = TestHub(tmp_path, broker).start()
        try:
            hub.add_site(SITE)
            hub.publisher.publish_site(SITE)
            store = {"path": str(small_disk / "edge.db"), "synchronous": "normal"}
            with connected_edge(tmp_path, hub, sections={"store": store}) as (agent, _card):
                assert wait_for(lambda: acl_version(agent) == 1, 10)
                replies = Client(broker.port).subscribe(protocol.reply_topic(SITE, DEVICE, "+"))
                db = sqlite3.connect(small_disk / "edge.db")
                assert wait_for(
                    lambda: db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0, 5
                )
                db.close()
                fill(small_disk)

                topic, payload, _ = command_message(hub.key, SITE, DEVICE, "unlock", {"seconds": 1})
                hub.client.publish(topic, payload)
                assert wait_for(lambda: replies.messages, 10), "the command got no answer"
                reply = protocol.CommandReply.model_validate_json(replies.messages[0].payload)
                assert reply.ok is False and "cannot record" in (reply.detail or "")

                os.remove(small_disk / "filler")
                hub.client.publish(topic, payload)  # the same command, once space is back
                assert wait_for(lambda: len(replies.messages) == 2, 10)
                again = protocol.CommandReply.model_validate_json(replies.messages[1].payload)
                assert again.ok is True, again
        finally:
            hub.stop()
