"""``hafen edge selftest`` on real parts: gpiozero's mock pins, nfcpy's UDP reader with an
emulated card, a CO2 sensor speaking its serial protocol on a pty, a real mosquitto, and the
site's list signed and applied as the agent applies it."""

from __future__ import annotations

import json
import os
import threading

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.agent.door_claim import DoorClaim
from edge.agent.runner import AGENT, EXIT_IN_USE, run_agent
from edge.agent.store import EdgeStore
from hafen.cli.edge import EXIT_CANNOT_START, EXIT_CHECK_FAILED
from sim.broker import LocalBroker
from sim.card_emulator import EmulatedCard
from sim.co2_sensor import SimulatedCo2Sensor
from sim.door import mock_pin, open_door, press_exit
from tests.support.edge import ANNA, outbox, rises
from tests.support.selftest import (
    BUZZER,
    LED,
    STRIKE,
    Door,
    anna_list,
    apply_signed,
    door_config,
    write_door,
)

#: What a run without a technician at the door passes to finish quickly.
QUICK = ("--no-strike", "--no-card", "--no-interactive")


@pytest.fixture
def door(tmp_path, mock_pins):
    """A networked door, its list signed by the hub and applied, its CO2 sensor reading 612."""
    hub_key = Ed25519PrivateKey.generate()
    with (
        LocalBroker(tmp_path / "broker") as broker,
        SimulatedCo2Sensor(tmp_path / "co2", "mhz19b", ppm=612) as co2,
    ):
        built = write_door(
            tmp_path, door_config(tmp_path, broker.port, hub_key, co2.link), hub_key, co2
        )
        apply_signed(built.cfg, hub_key, anna_list())
        built.broker = broker
        yield built


def rows(output: str) -> dict[str, tuple[str, str]]:
    """The table's rows: check -> (result, detail)."""
    found = {}
    for line in output.splitlines():
        parts = line.split(maxsplit=2)
        if len(parts) >= 2 and parts[1] in ("PASS", "FAIL", "SKIPPED"):
            found[parts[0]] = (parts[1], parts[2] if len(parts) > 2 else "")
    return found


def kept_selftest(door: Door) -> dict:
    store = EdgeStore(door.cfg.store.path)
    try:
        [(kind, body)] = outbox(store)
    finally:
        store.close()
    assert kind == "device.selftest"
    return body


def test_a_door_whose_parts_all_work_passes_and_pulses_the_strike_once(door, mock_pins):
    card = threading.Thread(
        target=EmulatedCard(door.cfg.reader.path).present, args=(ANNA,), kwargs={"timeout": 10}
    )
    card.start()
    result = door.selftest("--wait", "10", "--no-interactive")
    card.join()
    assert result.exit_code == 0, result.output
    assert "The door will unlock for 1 s." in result.output
    table = rows(result.output)
    assert set(table) == {
        "access_list", "list_signature", "strike", "led", "buzzer", "contact", "exit_button",
        "pir.coworking", "co2.air", "counter", "card", "broker",
    }  # fmt: skip
    assert {outcome for outcome, _ in table.values()} == {"PASS"}, result.output
    assert table["card"][1].startswith("allowed (plan flex) (member anna, card:")
    assert table["co2.air"][1] == "612 ppm"
    assert table["counter"][1] == "both beams clear"  # pulled up: each receiver sees its light
    # The contact's pin is pulled up when the self-test takes it; nothing pulls it low: the
    # reed is open (the door leaf of the mock world is not in its frame).
    assert table["contact"][1] == "the door is open"
    assert "signed by hub key" in table["list_signature"][1]
    assert "self-test PASSED: 12 passed, 0 failed, 0 skipped" in result.output
    for uid in (ANNA.hex(), ANNA.hex().upper()):
        assert uid not in result.output
    strike = mock_pins.pin(STRIKE)
    assert [s.state for s in strike.states] == [False, True, False]
    assert strike.states[2].timestamp == pytest.approx(1.0, abs=0.15)  # time since the last
    assert rises(mock_pins.pin(LED)) == 3 and rises(mock_pins.pin(BUZZER)) == 3
    event = kept_selftest(door)
    assert event["passed"] is True and len(event["checks"]) == 12
    card_check = next(c for c in event["checks"] if c["name"] == "card")
    assert card_check == {"name": "card", "outcome": "pass", "detail": "allowed (plan flex)"}
    assert "anna" not in json.dumps(event) and ANNA.hex() not in json.dumps(event).lower()


def test_a_silent_co2_sensor_fails_the_self_test(door, mock_pins):
    door.co2.mode = "silent"
    result = door.selftest(*QUICK)
    assert result.exit_code == EXIT_CHECK_FAILED, result.output
    outcome, detail = rows(result.output)["co2.air"]
    assert outcome == "FAIL" and detail.startswith("timeout: no reply")
    assert rows(result.output)["strike"] == ("SKIPPED", "not pulsed (--no-strike)")
    assert rises(mock_pins.pin(STRIKE)) == 0
    event = kept_selftest(door)
    assert event["passed"] is False
    assert {c["name"] for c in event["checks"] if c["outcome"] == "fail"} == {"co2.air"}


def test_a_part_whose_pin_is_taken_fails_alone(door, mock_pins):
    from gpiozero import LED as Led

    held = Led(LED)  # another program holds the LED's pin
    try:
        result = door.selftest(*QUICK)
    finally:
        held.close()
    assert result.exit_code == EXIT_CHECK_FAILED
    table = rows(result.output)
    assert (
        table["led"][0] == "FAIL" and "cannot take its pin or port: GPIOPinInUse" in table["led"][1]
    )
    assert table["buzzer"] == ("PASS", "beeped 3 times")


def test_a_broker_that_is_down_fails_the_self_test(door):
    assert door.broker is not None
    door.broker.stop()
    result = door.selftest("--no-strike", "--no-card")
    assert result.exit_code == EXIT_CHECK_FAILED
    outcome, detail = rows(result.output)["broker"]
    assert outcome == "FAIL" and f"cannot reach 127.0.0.1:{door.broker.port}" in detail
    # Without a terminal (CliRunner's stdin) nobody is asked to press the button.
    assert "Press the exit button" not in result.output
    assert rows(result.output)["exit_button"] == (
        "PASS", "not pressed (no one asked to press it: not interactive)"
    )  # fmt: skip


def test_a_door_without_a_list_fails_the_self_test(tmp_path, mock_pins):
    hub_key = Ed25519PrivateKey.generate()
    with SimulatedCo2Sensor(tmp_path / "co2") as co2, LocalBroker(tmp_path / "broker") as broker:
        door = write_door(
            tmp_path, door_config(tmp_path, broker.port, hub_key, co2.link), hub_key, co2
        )
        result = door.selftest(*QUICK)
    assert result.exit_code == EXIT_CHECK_FAILED
    table = rows(result.output)
    assert table["access_list"][0] == "FAIL" and table["access_list"][1].startswith("none applied")
    assert table["list_signature"] == ("FAIL", "no list to verify")


def test_a_damaged_store_fails_and_is_left_for_the_agent_to_recover(door):
    from tests.support.damage import zero_header

    zero_header(door.cfg.store.path)
    result = door.selftest(*QUICK)
    assert result.exit_code == EXIT_CHECK_FAILED
    table = rows(result.output)
    assert (
        table["access_list"][0] == "FAIL"
        and "starting the agent recovers it" in table["access_list"][1]
    )
    assert table["list_signature"] == ("FAIL", "no list to verify: the store cannot be read")
    assert table["co2.air"][0] == "PASS"  # the parts are tested all the same
    assert "not kept for the hub" in result.output
    assert not list(door.path.parent.glob("edge.db.corrupt-*")), "recovery is the agent's"


def test_a_list_loaded_by_hand_is_not_verified(door):
    """load-acl on a networked door: the list in force is not the hub's."""
    plain = door.path.with_name("acl.json")
    plain.write_text(anna_list(version=2).model_dump_json())
    from typer.testing import CliRunner

    from hafen.cli import app

    loaded = CliRunner().invoke(app, ["edge", "load-acl", str(plain), "-c", str(door.path)])
    assert loaded.exit_code == 0, loaded.output
    result = door.selftest(*QUICK)
    assert result.exit_code == EXIT_CHECK_FAILED
    table = rows(result.output)
    assert table["access_list"][0] == "PASS"
    assert table["list_signature"] == (
        "FAIL", "version 2 was loaded from a file, not signed by the hub"
    )  # fmt: skip


def test_a_retired_hub_key_and_a_co2_reading_no_room_has_fail(door):
    """Two failures a technician meets after a key rotation and on a mis-calibrated sensor."""
    from hafen.signing import public_key_text

    other = Ed25519PrivateKey.generate()
    text = door.path.read_text().replace(public_key_text(door.hub_key), public_key_text(other))
    door.path.write_text(text)  # the list's signer is no longer among [hub] public_keys
    door.co2.ppm = 0  # a sensor whose baseline went wrong
    table = rows(door.selftest(*QUICK).output)
    assert table["list_signature"][0] == "FAIL" and table["list_signature"][1].endswith(
        "not trusted now"
    )
    assert table["co2.air"][0] == "FAIL" and "outside 300..5000 ppm" in table["co2.air"][1]


def test_the_exit_button_is_pressed_when_asked(door):
    done = threading.Event()

    def technician() -> None:  # presses until the self-test is over
        while not done.wait(0.2):
            press_exit(door.cfg.door)

    presser = threading.Thread(target=technician)
    presser.start()
    try:
        result = door.selftest("--no-strike", "--no-card", "--interactive", "--wait", "5")
    finally:
        done.set()
        presser.join()
    assert "Press the exit button now (5 s) ..." in result.output
    assert rows(result.output)["exit_button"] == ("PASS", "press seen")


def test_an_exit_button_nobody_presses_fails(door):
    asked = door.selftest("--no-strike", "--no-card", "--interactive", "--wait", "0.3")
    assert rows(asked.output)["exit_button"] == ("FAIL", "no press within 0.3 s (not pressed)")


def test_no_card_within_the_wait_fails(door):
    result = door.selftest("--no-strike", "--no-interactive", "--wait", "0.5")
    assert result.exit_code == EXIT_CHECK_FAILED
    assert rows(result.output)["card"] == (
        "FAIL", "no card within 0.5 s (--no-card skips this check)"
    )  # fmt: skip


def test_a_reader_that_cannot_be_opened_fails_at_once(tmp_path, mock_pins):
    hub_key = Ed25519PrivateKey.generate()
    with SimulatedCo2Sensor(tmp_path / "co2") as co2, LocalBroker(tmp_path / "broker") as broker:
        raw = door_config(tmp_path, broker.port, hub_key, co2.link)
        raw["reader"]["path"] = "tty:doesnotexist:pn532"
        result = write_door(tmp_path, raw, hub_key, co2).selftest("--no-strike", "--wait", "8")
    outcome, detail = rows(result.output)["card"]
    assert outcome == "FAIL" and detail.startswith("the reader failed: cannot open reader tty:")


def test_the_self_test_refuses_while_the_agent_drives_the_door(door, mock_pins):
    with DoorClaim(door.cfg.store.path, AGENT):
        result = door.selftest(*QUICK)
    assert result.exit_code == EXIT_CANNOT_START
    assert "the door is in use by the door agent (hafen edge run) (pid" in result.output
    assert "systemctl stop hafen-edge" in result.output
    assert mock_pins.pin(STRIKE).states[-1].state is False
    store = EdgeStore(door.cfg.store.path)
    assert outbox(store) == []  # nothing tested, nothing kept
    store.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can hand the directory to another")
def test_the_self_test_refuses_to_run_as_another_user_than_the_agents(door, mock_pins):
    """Run by root (sudo) it would leave files in the state directory the agent cannot open."""
    os.chown(door.cfg.store.path.parent, 65534, -1)  # the agent's user, say
    result = door.selftest(*QUICK)
    assert result.exit_code == EXIT_CANNOT_START
    assert "run the self-test as" in result.output and "sudo -u" in result.output
    assert not door.cfg.store.path.with_name("edge.db.lock").exists()
    assert mock_pins.pin(STRIKE).states[-1].state is False


def test_the_agent_does_not_start_while_a_self_test_drives_the_door(door):
    with (
        DoorClaim(door.cfg.store.path, "a self-test (hafen edge selftest)"),
        pytest.raises(SystemExit) as stopped,
    ):
        run_agent(door.cfg)
    assert stopped.value.code == EXIT_IN_USE
    assert mock_pin(STRIKE).states[-1].state is False


def test_the_contact_reads_the_door_leaf(mock_pins):
    from edge.agent.config import DoorConfig
    from edge.drivers.door import DoorContact
    from edge.selftest.door import check_contact

    settings = DoorConfig.model_validate({"strike": {"pin": 17}, "contact": {"pin": 27}})
    assert settings.contact is not None
    contact = DoorContact.from_settings(settings.contact, lambda: None, lambda: None)
    try:
        open_door(settings, False)
        assert check_contact(contact).detail == "the door is shut"
        open_door(settings, True)
        assert check_contact(contact).detail == "the door is open"
    finally:
        contact.close()
