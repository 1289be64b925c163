"""The doors' update reports (hub.rollout_steps, issue 17), as ingest writes them: a door's
step only moves forward, its end is final but for a roll-back after healthy, a healthy from
the old version is a failure, and reports that fit no rollout are ignored without holding
ingest up. On SQLite and PostgreSQL; once through a real ingest worker on mosquitto."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from hafen.protocol import EventKind, EventMessage, event_topic
from hub import db
from hub.rollout_steps import MAX_HISTORY
from hub.services.rollout_driver import advance
from hub.services.rollout_models import RolloutIn
from hub.services.rollout_reads import get_rollout
from hub.services.rollouts import create_rollout
from sim.broker import LocalBroker
from tests.support.network import TestHub
from tests.support.refusals import Client
from tests.support.rollouts import ADMIN, add_door, add_release, report, steps
from tests.support.waiting import wait_for

V = "1.4.0"
DOOR = "borna/door-1"


def no_send(site: str, device: str, order) -> None:
    """These tests look at the reports, not the orders (test_hub_rollout_driver does)."""


@pytest.fixture
def rollout(engine) -> int:
    """A rollout of 1.4.0 to two doors, both ordered."""
    add_release(engine, V)
    add_door(engine, "borna", "door-1")
    add_door(engine, "borna", "door-2")
    add_door(engine, "kiel", "door-1", software=V)
    made = create_rollout(engine, ADMIN, RolloutIn(version=V, stages="100%", max_failures=2))
    advance(engine, no_send)
    return made.id


def door(engine, rollout: int, name: str = DOOR):
    return next(
        d for d in get_rollout(engine, ADMIN, rollout).device_list if f"{d.site}/{d.device}" == name
    )


def test_steps_only_move_forward_and_late_ones_are_kept_as_ignored(engine, rollout):
    report(engine, rollout, DOOR, "installed", V, running="1.3.0")
    report(engine, rollout, DOOR, "downloading", V, running="1.3.0")  # late: ignored
    assert steps(engine, rollout)[DOOR] == "installed"
    report(engine, rollout, DOOR, "restarting", V, running="1.3.0")
    report(engine, rollout, DOOR, "healthy", V, detail="gate passed after 42 s")
    report(engine, rollout, DOOR, "failed", V, detail="a replayed report")  # after the end
    seen = door(engine, rollout)
    assert (seen.step, seen.detail) == ("healthy", "gate passed after 42 s")
    assert [(h.step, h.ignored) for h in seen.history] == [
        ("ordered", False),
        ("installed", False),
        ("downloading", True),
        ("restarting", False),
        ("healthy", False),
        ("failed", True),
    ]


def test_a_roll_back_after_healthy_overrides_it(engine, rollout):
    report(engine, rollout, DOOR, "healthy", V)
    report(
        engine, rollout, DOOR, "rolled_back", V, running="1.3.0", detail="crash loop: 3 restarts"
    )
    seen = door(engine, rollout)
    assert (seen.step, seen.detail) == ("rolled_back", "crash loop: 3 restarts")
    report(engine, rollout, DOOR, "healthy", V)  # the end of a roll-back is final
    assert steps(engine, rollout)[DOOR] == "rolled_back"


def test_healthy_from_the_old_version_is_a_failure(engine, rollout):
    report(engine, rollout, DOOR, "healthy", V, running="1.3.0")
    seen = door(engine, rollout)
    assert (seen.step, seen.detail) == ("failed", "reported healthy while running 1.3.0")


def test_details_are_bounded_and_the_history_keeps_the_newest(engine, rollout):
    report(engine, rollout, DOOR, "installed", V, running="1.3.0")
    for _ in range(MAX_HISTORY + 5):
        report(engine, rollout, DOOR, "downloading", V, running="1.3.0")  # late: ignored
    report(engine, rollout, DOOR, "failed", V, running="1.3.0", detail="x" * 300)
    seen = door(engine, rollout)
    assert len(seen.history) == MAX_HISTORY and seen.history[-1].step == "failed"
    assert len(seen.detail) == 300


def test_reports_that_fit_no_rollout_are_stored_as_events_and_move_nothing(engine, rollout):
    report(engine, rollout + 1, DOOR, "healthy", V)  # no such rollout
    report(engine, rollout, "leer/door-1", "healthy", V)  # not in it
    report(engine, rollout, DOOR, "healthy", "9.9.9")  # another version
    report(engine, rollout, "kiel/door-1", "rolled_back", V)  # on it already: never ordered
    assert steps(engine, rollout) == {
        DOOR: "ordered",
        "borna/door-2": "ordered",
        "kiel/door-1": "healthy",
    }
    with engine.connect() as conn:
        kinds = select(func.count()).where(db.events.c.kind == EventKind.UPDATE)
        assert conn.scalar(kinds) == 4


def test_a_report_reaches_its_rollout_through_ingest(tmp_path, hub_url):
    with LocalBroker(tmp_path / "broker") as broker:
        hub = TestHub(tmp_path, broker, url=hub_url).start()
        try:
            add_release(hub.engine, V)
            add_door(hub.engine, "borna", "door-1")
            hub.workers[0].screen.registry.invalidate()
            made = create_rollout(hub.engine, ADMIN, RolloutIn(version=V))
            advance(hub.engine, no_send)
            door_client = Client(broker.port)
            message = EventMessage(
                event_id=os.urandom(16).hex(),
                epoch="00000000000000aa",
                seq=1,
                at=datetime.now(UTC),
                data={"rollout": made.id, "version": V, "step": "healthy", "running": V},
            )
            door_client.publish(
                event_topic("borna", "door-1", EventKind.UPDATE),
                message.model_dump_json(by_alias=True).encode(),
            )
            assert wait_for(lambda: steps(hub.engine, made.id)[DOOR] == "healthy", 10)
            door_client.leave()
        finally:
            hub.stop()
