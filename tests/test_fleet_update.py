"""Fleet updates end to end (issue 17): real releases of hafen rolled out by the hub to doors
that run as their own processes on a real mosquitto with TLS, each installing the release
itself and handing its door over to it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.services.rollout_models import RolloutIn
from hub.services.rollout_reads import get_rollout
from hub.services.rollouts import create_rollout
from tests.support.fleet import RUNNING, Fleet, Taps, events_of
from tests.support.rollouts import ADMIN
from tests.support.waiting import wait_for

NEW = "0.1.1"


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    fleet = Fleet(tmp_path)
    try:
        yield fleet
    finally:
        fleet.close()


def rollout_done(fleet: Fleet, rollout: int, timeout: float) -> bool:
    engine = fleet.network.engine
    return wait_for(
        lambda: get_rollout(engine, ADMIN, rollout).state in ("done", "paused"), timeout
    )


@pytest.mark.timeout(600)
def test_five_doors_update_in_stages_and_every_tap_is_decided_once(fleet):
    devices = [f"door-{n}" for n in range(1, 6)]
    doors = [fleet.door(device) for device in devices]
    assert wait_for(lambda: all(fleet.software(d) == RUNNING for d in devices), 30)
    fleet.release(NEW)
    taps = [Taps(door.card, every=0.4).start() for door in doors]
    engine = fleet.network.engine
    rollout = create_rollout(engine, ADMIN, RolloutIn(version=NEW, stages="1,40%,100%"))
    finished = rollout_done(fleet, rollout.id, 300)
    for tapping in taps:
        tapping.stop()
    detail = get_rollout(engine, ADMIN, rollout.id)
    assert finished and detail.state == "done", (detail, doors[0].log_text()[-3000:])
    # In stages: the canary first, then one more, then the rest, each after the one before.
    healthy_at = {d.device: d.step_at for d in detail.device_list if d.step_at is not None}
    stage_of = {d.device: d.stage for d in detail.device_list}
    assert sorted(stage_of.values()) == [1, 2, 3, 3, 3]
    for later in devices:
        for earlier in devices:
            if stage_of[earlier] < stage_of[later]:
                assert healthy_at[earlier] <= healthy_at[later]
    for door, device in zip(doors, devices, strict=True):
        assert door.dirs.current() == NEW and door.dirs.previous() == RUNNING
        assert wait_for(lambda device=device: fleet.software(device) == NEW, 30)
        # Healthy is said by the new version, after its gate passed and it was made current.
        steps = [(r["step"], r["running"]) for r in events_of(fleet, device, "device.update")]
        assert steps == [
            ("downloading", RUNNING),
            ("installed", RUNNING),
            ("restarting", RUNNING),
            ("healthy", NEW),
        ]
        assert "this version is current now" in door.log_text()
    # Every card the readers read was decided, and reached the hub once.
    for tapping, device in zip(taps, devices, strict=True):
        assert tapping.missed == 0 and len(tapping.read) > 20
        decided = lambda device=device: events_of(fleet, device, "door.decision")  # noqa: E731
        assert wait_for(lambda t=tapping, d=decided: len(d()) == len(t.read), 60)
        seqs = [event["seq"] for event in decided()]
        assert len(seqs) == len(set(seqs))
