"""The NFC reader driver on nfcpy's real UDP driver, a second nfcpy frontend being the card."""

from __future__ import annotations

import threading
import time

import pytest

from edge.drivers.nfc_reader import CardRead, NfcReader
from sim.card_emulator import EmulatedCard
from tests.support.edge import free_udp_port
from tests.support.waiting import wait_for


def start_reader(**options) -> tuple[NfcReader, str, list, list]:
    """A started reader on a free UDP port: (reader, path, taps, faults)."""
    path = f"udp:127.0.0.1:{free_udp_port()}"
    taps: list[CardRead] = []
    faults: list[str | None] = []  # None: the fault cleared
    r = NfcReader(
        path,
        on_card=taps.append,
        on_fault=faults.append,
        targets=["106A"],
        poll_interval=0.02,
        **options,
    )
    r.start()
    return r, path, taps, faults


@pytest.fixture
def reader():
    """Yields (reader, card, taps, faults)."""
    r, path, taps, faults = start_reader(removal_polls=2)
    yield r, EmulatedCard(path), taps, faults
    r.stop()


@pytest.mark.parametrize("uid", ["04A1B2C3D4E5F6", "11223344"])
def test_a_presented_card_is_one_tap_with_its_uid(reader, uid):
    _, card, taps, faults = reader
    assert card.present(bytes.fromhex(uid)) is not None
    assert wait_for(lambda: len(taps) == 1, 1)
    assert taps[0].uid == bytes.fromhex(uid) and taps[0].technology == "A"
    assert faults == []


def test_a_card_left_on_the_reader_counts_once(reader):
    _, card, taps, _ = reader
    card.present(bytes.fromhex("04A1B2C3D4E5F6"), hold=1.5)
    time.sleep(0.2)
    assert len(taps) == 1


def test_taking_the_card_away_and_back_is_a_new_tap(reader):
    _, card, taps, _ = reader
    uid = bytes.fromhex("04A1B2C3D4E5F6")
    card.present(uid)
    time.sleep(2.5)  # two empty polls (the UDP driver waits a second for an answer each time)
    card.present(uid)
    assert wait_for(lambda: len(taps) == 2, 1)


def test_different_cards_in_a_row_are_separate_taps(reader):
    _, card, taps, _ = reader
    uids = [bytes([0x04, i, 2, 3, 4, 5, 6]) for i in range(10)]
    for uid in uids:
        assert card.present(uid) is not None
    assert wait_for(lambda: len(taps) == 10, 2)
    assert [t.uid for t in taps] == uids


def test_reader_that_cannot_be_opened_is_a_fault_not_a_crash():
    faults: list[str | None] = []
    r = NfcReader(
        "tty:hafen-no-such-port:pn532",
        on_card=lambda c: None,
        on_fault=faults.append,
        reconnect_max_seconds=0.5,
    )
    r.start()
    try:
        assert wait_for(lambda: len(faults) == 1, 3)
        assert "cannot open reader" in str(faults[0])
        assert r.fault is not None
        time.sleep(1.5)  # keeps retrying with backoff, reports the same fault only once
        assert len(faults) == 1
        assert r._thread is not None and r._thread.is_alive()
    finally:
        r.stop()


def test_reader_reopens_after_failing_and_reports_recovery():
    """A reader that fails mid-poll is closed, reported, reopened, and reads cards again."""
    r, path, taps, faults = start_reader(reconnect_max_seconds=0.5)
    try:
        assert wait_for(lambda: r._clf is not None, 2)
        # Unplugging: the device under the frontend disappears, as a USB reader's does.
        unplugged = threading.Event()
        assert r._clf is not None
        device = r._clf.device

        def gone(*_args, **_kwargs):
            unplugged.set()
            raise OSError(19, "No such device")

        device.sense_tta = gone
        assert wait_for(unplugged.is_set, 3)
        assert wait_for(lambda: faults[:1] and faults[0] and "No such device" in faults[0], 2)
        assert wait_for(lambda: len(faults) == 2 and faults[1] is None, 3)  # reopened
        assert EmulatedCard(path).present(bytes.fromhex("04A1B2C3D4E5F6")) is not None
        assert wait_for(lambda: len(taps) == 1, 2)
    finally:
        r.stop()
