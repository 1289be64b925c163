"""Door behaviour on gpiozero mock pins, with cards tapped through nfcpy's real UDP reader."""

from __future__ import annotations

import time

import pytest

from sim.door import open_door, press_exit, shut_door
from tests.support.edge import ANNA, STRANGER, outbox, rises, running_agent
from tests.support.waiting import wait_for

STRIKE, LED, BUZZER = 17, 23, 24


def alarms(agent) -> list[tuple[str, str]]:
    return [(b["alarm"], b["state"]) for k, b in outbox(agent.store) if k == "door.alarm"]


def test_allowed_card_pulses_the_relay_for_the_unlock_time(tmp_path, mock_pins):
    with running_agent(tmp_path, unlock_seconds=0.5) as (agent, cfg, card):
        shut_door(cfg.door)
        relay = mock_pins.pin(STRIKE)
        assert relay.state is False
        assert card.present(ANNA) is not None
        assert wait_for(lambda: relay.state is True, 2)
        assert wait_for(lambda: relay.state is False, 2)
        high_for = relay.states[-1].timestamp  # mock pins record the time since the last change
        assert high_for == pytest.approx(0.5, abs=0.1)
        assert [s.state for s in relay.states] == [False, True, False]
        [(kind, body)] = outbox(agent.store)
        assert kind == "door.decision"
        assert body["allowed"] is True and body["member"] == "anna"
        assert len(body["card"]) == 32 and ANNA.hex() not in body["card"].lower()


def test_unknown_card_keeps_the_door_locked_and_signals_no(tmp_path, mock_pins):
    with running_agent(tmp_path) as (agent, cfg, card):
        shut_door(cfg.door)
        assert card.present(STRANGER) is not None
        assert wait_for(lambda: len(outbox(agent.store)) == 1, 2)
        assert wait_for(lambda: rises(mock_pins.pin(LED)) == 3, 2)
        assert wait_for(lambda: rises(mock_pins.pin(BUZZER)) == 3, 1)
        assert rises(mock_pins.pin(STRIKE)) == 0
        [(_, body)] = outbox(agent.store)
        assert body == {"card": body["card"], "allowed": False, "reason": "unknown_card"}


def test_card_held_on_the_reader_is_one_tap(tmp_path, mock_pins):
    with running_agent(tmp_path, unlock_seconds=0.2) as (agent, cfg, card):
        shut_door(cfg.door)
        assert card.present(ANNA, hold=1.0) is not None
        time.sleep(0.3)
        assert len(outbox(agent.store)) == 1
        assert rises(mock_pins.pin(STRIKE)) == 1


def test_exit_button_unlocks_and_is_recorded(tmp_path, mock_pins):
    with running_agent(tmp_path, unlock_seconds=0.3) as (agent, cfg, _):
        shut_door(cfg.door)
        press_exit(cfg.door)
        assert wait_for(lambda: mock_pins.pin(STRIKE).state is True, 1)
        open_door(cfg.door, True)
        open_door(cfg.door, False)
        assert wait_for(lambda: mock_pins.pin(STRIKE).state is False, 1)
        assert [k for k, _ in outbox(agent.store)] == ["door.exit"]
        assert alarms(agent) == []


def test_door_opened_while_locked_is_forced(tmp_path, mock_pins):
    with running_agent(tmp_path) as (agent, cfg, _):
        shut_door(cfg.door)
        open_door(cfg.door, True)
        assert wait_for(lambda: alarms(agent) == [("forced", "raised")], 1)
        assert wait_for(lambda: rises(mock_pins.pin(BUZZER)) == 1, 1)
        open_door(cfg.door, False)
        assert wait_for(lambda: alarms(agent) == [("forced", "raised"), ("forced", "cleared")], 1)


def test_door_held_open_raises_and_clears(tmp_path, mock_pins):
    with running_agent(tmp_path, unlock_seconds=0.3, held_open_seconds=0.6) as (agent, cfg, card):
        shut_door(cfg.door)
        card.present(ANNA)
        assert wait_for(lambda: mock_pins.pin(STRIKE).state is True, 2)
        open_door(cfg.door, True)
        time.sleep(0.3)
        assert alarms(agent) == []
        assert wait_for(lambda: alarms(agent) == [("held_open", "raised")], 1)
        open_door(cfg.door, False)
        assert wait_for(lambda: len(alarms(agent)) == 2, 1)
        cleared = [b for k, b in outbox(agent.store) if k == "door.alarm"][-1]
        assert cleared["state"] == "cleared" and cleared["open_seconds"] >= 0.6


def test_door_relocks_as_soon_as_it_closes(tmp_path, mock_pins):
    with running_agent(tmp_path, unlock_seconds=5.0) as (_, cfg, card):
        shut_door(cfg.door)
        card.present(ANNA)
        relay = mock_pins.pin(STRIKE)
        assert wait_for(lambda: relay.state is True, 2)
        open_door(cfg.door, True)
        time.sleep(0.1)
        assert relay.state is True
        open_door(cfg.door, False)
        assert wait_for(lambda: relay.state is False, 0.5)


def test_no_relock_on_close_keeps_the_full_pulse(tmp_path, mock_pins):
    with running_agent(tmp_path, unlock_seconds=0.6, relock_on_close=False) as (_, cfg, card):
        shut_door(cfg.door)
        card.present(ANNA)
        relay = mock_pins.pin(STRIKE)
        assert wait_for(lambda: relay.state is True, 2)
        open_door(cfg.door, True)
        open_door(cfg.door, False)
        time.sleep(0.2)
        assert relay.state is True
        assert wait_for(lambda: relay.state is False, 1)


def handled_so_far(agent, card) -> None:
    """Tap an unknown card and wait for its decision: the agent handles inputs in order, so
    everything that happened before has been handled too."""
    before = len(outbox(agent.store))
    card.present(STRANGER)
    assert wait_for(lambda: len(outbox(agent.store)) > before, 3)


def test_push_right_after_relock_is_not_forced(tmp_path, mock_pins):
    with running_agent(tmp_path, unlock_seconds=0.2, forced_grace_seconds=1.0) as (a, cfg, card):
        shut_door(cfg.door)
        card.present(ANNA)
        relay = mock_pins.pin(STRIKE)
        assert wait_for(lambda: relay.state is True, 2)
        assert wait_for(lambda: relay.state is False, 1)
        open_door(cfg.door, True)  # the member was still pushing as the strike relocked
        open_door(cfg.door, False)
        handled_so_far(a, card)
        assert alarms(a) == []


def test_reopening_a_door_that_relocked_on_close_is_forced(tmp_path, mock_pins):
    with running_agent(tmp_path, unlock_seconds=5.0, forced_grace_seconds=1.0) as (a, cfg, card):
        shut_door(cfg.door)
        card.present(ANNA)
        assert wait_for(lambda: mock_pins.pin(STRIKE).state is True, 2)
        open_door(cfg.door, True)
        open_door(cfg.door, False)
        assert wait_for(lambda: mock_pins.pin(STRIKE).state is False, 1)
        open_door(cfg.door, True)
        assert wait_for(lambda: alarms(a) == [("forced", "raised")], 1)


def test_a_door_open_when_the_agent_starts_is_held_open(tmp_path, mock_pins):
    # The mock contact floats high at start: the door stands open, nobody shuts it.
    with running_agent(tmp_path, held_open_seconds=0.5) as (agent, _, _card):
        assert wait_for(lambda: alarms(agent) == [("held_open", "raised")], 2)


def test_a_store_that_cannot_be_written_lets_members_in_and_writes_the_records_later(
    tmp_path, mock_pins
):
    """The list still decides; the records wait in memory, in order, with a fault on the board,
    until the store takes writes again (edge.agent.store_guard says why)."""
    with running_agent(tmp_path, unlock_seconds=0.3) as (agent, cfg, card):
        shut_door(cfg.door)
        handled_so_far(agent, card)
        before = len(outbox(agent.store))
        # The SD card went read-only (what a Pi's kernel does after write errors).
        agent.store.conn.execute("PRAGMA query_only=ON")
        card.present(ANNA)
        assert wait_for(lambda: rises(mock_pins.pin(STRIKE)) == 1, 3)  # she gets in
        assert "cannot write" in agent.faults.current()["store"]
        assert wait_for(lambda: mock_pins.pin(STRIKE).state is False, 2)  # relocked
        press_exit(cfg.door)
        assert wait_for(lambda: rises(mock_pins.pin(STRIKE)) == 2, 2)
        assert len(outbox(agent.store)) == before
        agent.store.conn.execute("PRAGMA query_only=OFF")  # writable again
        handled_so_far(agent, card)  # the next write takes the kept ones first
        assert not agent.guard.kept and "store" not in agent.faults.current()
        kinds = [k for k, _ in outbox(agent.store)][before:]
        # In order: her tap, the fault, the exit, the tap that found the store writable, the
        # fault's end.
        assert kinds == [
            "door.decision",
            "device.fault",
            "door.exit",
            "door.decision",
            "device.fault",
        ]


@pytest.mark.parametrize(
    ("fail_mode", "active_high", "locked_level", "unlocked_level"),
    [
        ("secure", True, False, True),
        ("secure", False, True, False),
        ("safe", True, True, False),
        ("safe", False, False, True),
    ],
)
def test_fail_mode_decides_the_relay_and_the_state_after_stop(
    tmp_path, mock_pins, fail_mode, active_high, locked_level, unlocked_level
):
    strike = {"pin": STRIKE, "active_high": active_high}
    with running_agent(tmp_path, fail_mode=fail_mode, strike=strike, unlock_seconds=0.3) as (
        _agent,
        cfg,
        card,
    ):
        shut_door(cfg.door)
        relay = mock_pins.pin(STRIKE)
        assert relay.state is locked_level
        card.present(ANNA)
        assert wait_for(lambda: relay.state is unlocked_level, 2)
        assert wait_for(lambda: relay.state is locked_level, 2)
    # After the agent stops, the relay is de-energised: locked if fail-secure, open if fail-safe.
    de_energised = not active_high
    assert relay.state is de_energised
    assert (relay.state is unlocked_level) == (fail_mode == "safe")


@pytest.mark.parametrize("fail_mode", ["secure", "safe"])
def test_stopping_while_unlocked_leaves_the_fail_state(tmp_path, mock_pins, fail_mode):
    with running_agent(tmp_path, fail_mode=fail_mode, unlock_seconds=30) as (_, cfg, card):
        shut_door(cfg.door)
        card.present(ANNA)
        relay = mock_pins.pin(STRIKE)
        assert wait_for(lambda: relay.state is (fail_mode == "secure"), 2)  # unlocked now
    assert relay.state is False  # de-energised: locked if secure, unlocked if safe
