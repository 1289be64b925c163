"""A store damaged while the door runs: noticed (by a tap, or by the periodic check), reported,
cards decided by the fail mode, and the agent restarted into recovery, losing nothing readable."""

from __future__ import annotations

import signal
import sqlite3
from contextlib import contextmanager
from pathlib import Path

from edge.agent.agent import EdgeAgent
from edge.agent.recovery import keep_events, open_store
from edge.agent.runner import EXIT_RECOVER
from hafen.cards import card_hash
from sim.card_emulator import EmulatedCard
from sim.door import shut_door
from tests.support.agent_process import start_agent, write_config
from tests.support.damage import CARDS, build_store, garble_page, page_holding, pages_of
from tests.support.edge import CARD_KEY, free_udp_port, make_config, outbox, rises
from tests.support.waiting import wait_for

STRIKE = 17
MEMBERS = list(CARDS)


@contextmanager
def running(tmp_path: Path, **door):
    """An agent on a store with a 3,000-card list, as the runner starts it; yields the agent,
    the reader's card and the reasons it was asked to recover for."""
    cfg = make_config(tmp_path, **door)
    build_store(cfg.store.path, events=0)
    store, _ = open_store(cfg.store.path, cfg.store.synchronous)
    asked: list[str] = []
    agent = EdgeAgent(cfg, store, on_store_damaged=asked.append)
    agent.housekeeping.every = 0.1
    agent.start()
    shut_door(cfg.door)
    try:
        yield agent, EmulatedCard(cfg.reader.path), asked
    finally:
        agent.stop()
        store.close()


def decisions(agent: EdgeAgent) -> list[dict]:
    return [body for kind, body in outbox(agent.store) if kind == "door.decision"]


def damage_card_page(path: Path, uid: bytes) -> None:
    garble_page(path, page_holding(path, "cards", card_hash(CARD_KEY, uid)))


def test_a_damaged_cards_page_is_noticed_at_a_tap_and_the_fail_mode_decides(tmp_path, mock_pins):
    """Before: the tap was refused ("could not decide") and nothing was reported, for ever."""
    with running(tmp_path, unlock_seconds=0.2) as (agent, card, asked):
        assert card.present(MEMBERS[0]) is not None
        assert wait_for(lambda: len(decisions(agent)) == 1, 3)
        assert decisions(agent)[0]["allowed"] is True
        damage_card_page(agent.cfg.store.path, MEMBERS[2000])  # a page not read yet
        assert card.present(MEMBERS[2000]) is not None
        assert wait_for(lambda: asked, 3), "recovery was not asked for"
        assert "malformed" in asked[0]
        assert "damaged" in agent.faults.current()["store"]
        assert wait_for(lambda: len(decisions(agent)) == 2, 3)
        assert decisions(agent)[1] == {
            "card": card_hash(CARD_KEY, MEMBERS[2000]),
            "allowed": False,
            "reason": "store_failed",
        }
        # From now on the damaged list is not trusted: the fail mode decides every card.
        assert card.present(MEMBERS[0]) is not None
        assert wait_for(lambda: len(decisions(agent)) == 3, 3)
        assert decisions(agent)[2]["reason"] == "store_failed"
        assert rises(mock_pins.pin(STRIKE)) == 1  # the first tap only


def test_the_periodic_check_finds_damage_no_tap_touches(tmp_path, mock_pins):
    with running(tmp_path) as (agent, _card, asked):
        agent.housekeeping.check_every = 0.2  # in service: an hour
        garble_page(agent.cfg.store.path, pages_of(agent.cfg.store.path, "grants")[3])
        assert wait_for(lambda: asked, 5), "the housekeeping thread did not notice"
        assert asked[0].startswith("quick_check")
        assert "damaged" in agent.faults.current()["store"]


def test_events_the_damaged_store_cannot_take_are_kept_for_the_recovered_one(tmp_path, mock_pins):
    with running(tmp_path, unlock_seconds=0.2) as (agent, card, asked):
        [outbox_page] = pages_of(agent.cfg.store.path, "outbox")  # empty: its root alone
        garble_page(agent.cfg.store.path, outbox_page)
        assert card.present(MEMBERS[0]) is not None
        assert wait_for(lambda: asked, 3)
        assert wait_for(lambda: rises(mock_pins.pin(STRIKE)) == 1, 2)  # the list was readable
        kept = agent.guard.unwritten()
        assert [kind for _, kind, _, _ in kept] == ["door.decision", "device.fault"]
    # What the runner does when it stops: keep them for the next start, which recovers.
    assert keep_events(agent.cfg.store.path, kept) == 2
    store, recovery = open_store(agent.cfg.store.path)
    try:
        assert recovery is not None
        rows = store.conn.execute("SELECT event_id, kind FROM outbox ORDER BY seq").fetchall()
        assert rows[0][1] == "device.fault"  # the recovery's own report comes first
        assert rows[1:] == [(event_id, kind) for event_id, kind, _, _ in kept]
        assert not agent.cfg.store.path.with_name("edge.db.kept").exists()
    finally:
        store.close()


def test_the_agent_process_restarts_into_recovery_and_keeps_its_events(tmp_path):
    """`hafen edge run` exits EXIT_RECOVER; started again (systemd's Restart=always), the door
    runs on a fresh store, and the decisions of the damaged one wait to be delivered."""
    port = free_udp_port()
    config = write_config(tmp_path, port)
    path = tmp_path / "edge.db"
    before = build_store(path, events=6)
    log = tmp_path / "agent.log"
    agent = start_agent(config, tmp_path / "pins.log", log)
    card = EmulatedCard(f"udp:127.0.0.1:{port}")
    try:
        assert card.present(MEMBERS[1]) is not None
        assert wait_for(lambda: "allowed" in log.read_text(), 3)
        damage_card_page(path, MEMBERS[2500])
        assert card.present(MEMBERS[2500]) is not None
        assert agent.wait(15) == EXIT_RECOVER
    finally:
        if agent.poll() is None:
            agent.kill()
    assert path.with_name("edge.db.damaged").exists()  # word for the next start
    log = tmp_path / "again.log"
    again = start_agent(config, tmp_path / "pins.log", log)
    try:
        assert "found damaged while running" in log.read_text()
        assert card.present(MEMBERS[1]) is not None
        assert wait_for(lambda: "refused (no_access_list)" in log.read_text(), 3)
    finally:
        again.send_signal(signal.SIGTERM)
        assert again.wait(10) == 0
    db = sqlite3.connect(path)
    rows = db.execute("SELECT epoch, seq, event_id, kind FROM salvaged ORDER BY seq").fetchall()
    db.close()
    assert {epoch for epoch, *_ in rows} == {before["epoch"]}
    # The six built in, the allowed tap, its fault report, the refused tap: none lost.
    assert [event_id for _, _, event_id, _ in rows][:6] == before["event_ids"]
    door = [kind for *_, kind in rows[6:] if kind != "occupancy.sample"]  # the simulated space
    assert door == ["door.decision", "device.fault", "door.decision"]
    assert not path.with_name("edge.db.damaged").exists()


def test_the_unit_starts_the_agent_again_after_any_exit_and_never_gives_up():
    """Exit 75 is the agent asking to be started again (tests/test_shipped_files.py has
    `systemd-analyze verify` check the unit)."""
    unit = (Path(__file__).parents[1] / "systemd/hafen-edge.service").read_text()
    assert "\nRestart=always\n" in unit and "\nStartLimitIntervalSec=0\n" in unit
