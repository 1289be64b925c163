"""Fleet updates end to end (issue 17): real releases of hafen rolled out by the hub to doors
that run as their own processes on a real mosquitto with TLS, each installing the release
itself and handing its door over to it."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from hub.keys import generate_key
from hub.services.releases import add_release
from hub.services.rollout_models import RolloutIn
from hub.services.rollout_reads import get_rollout
from hub.services.rollouts import abort_rollout, create_rollout
from tests.support.fleet import RUNNING, Fleet, Taps, events_of, fails_to_start, never_healthy
from tests.support.provisioned import hafen
from tests.support.rollouts import ADMIN
from tests.support.waiting import wait_for
from tests.support.wheelhouse import wheelhouse

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


def decisions(fleet: Fleet, device: str) -> int:
    return len(events_of(fleet, device, "door.decision"))


def decided_since(fleet: Fleet, device: str, before: int) -> bool:
    return decisions(fleet, device) > before


@pytest.fixture
def quick_fleet(tmp_path: Path) -> Iterator[Fleet]:
    """A fleet whose doors give a new version 8 s to pass its gate."""
    fleet = Fleet(tmp_path, gate_seconds=8)
    try:
        yield fleet
    finally:
        fleet.close()


@pytest.mark.timeout(600)
def test_a_bad_release_stops_at_the_canary_which_keeps_deciding_on_the_old_one(quick_fleet):
    fleet = quick_fleet
    canary, other = fleet.door("door-1"), fleet.door("door-2")
    assert wait_for(lambda: fleet.software("door-1") == fleet.software("door-2") == RUNNING, 30)
    engine = fleet.network.engine
    fleet.release("0.1.2", fails_to_start)
    fleet.release("0.1.3", never_healthy)
    other_key = generate_key(fleet.root / "another-release.pem")
    wheels = wheelhouse("0.1.4", fleet.root / "wheels-0.1.4")
    add_release(engine, fleet.network.releases, wheels, "0.1.4", other_key)
    cases = [
        ("0.1.2", "rolled_back", "exited with status 1 before it was ready"),
        ("0.1.3", "rolled_back", "health gate failed: not healthy after 8 s: the reader is not"),
        ("0.1.4", "refused", "the manifest is not signed by a release key"),
    ]
    for version, step, why in cases:
        # The canary is the first door the rollout orders: both doors are in it, stages 1 then all.
        asked = RolloutIn(version=version, stages="1,100%")
        rollout = create_rollout(engine, ADMIN, asked)
        assert rollout_done(fleet, rollout.id, 180), version
        detail = get_rollout(engine, ADMIN, rollout.id)
        assert detail.state == "paused", (version, detail)
        first, second = sorted(detail.device_list, key=lambda d: d.stage)
        assert (first.step, second.step) == (step, "pending"), (version, detail.device_list)
        assert why in first.detail, (version, first.detail)
        assert second.ordered_at is None  # paused before the other door was ordered
        door = canary if first.device == "door-1" else other
        assert door.dirs.current() == RUNNING
        assert wait_for(lambda device=first.device: fleet.software(device) == RUNNING, 30)
        # It still decides, on the old version: a card is read and its decision reaches the hub.
        before = decisions(fleet, first.device)
        assert door.card.present(b"\x04\x11\x22\x33\x44\x55\x66", timeout=20) is not None
        assert wait_for(partial(decided_since, fleet, first.device, before), 30)
        abort_rollout(engine, ADMIN, rollout.id)


@pytest.mark.timeout(600)
def test_a_door_killed_at_each_step_of_its_update_ends_on_one_working_version(fleet):
    door = fleet.door("front-door")
    assert wait_for(lambda: fleet.software("front-door") == RUNNING, 30)
    fleet.release(NEW)
    taps = Taps(door.card, every=0.3).start()
    engine = fleet.network.engine
    rollout = create_rollout(engine, ADMIN, RolloutIn(version=NEW, stages="100%"))
    killed = []
    # The last: the new version after its gate, within its ten minutes of probation.
    for phase in ("downloading", "installing", "switching", "healthy"):
        frozen = door.freeze_at(phase, 120)
        assert frozen == phase, (phase, frozen, door.log_text()[-2000:])
        door.kill()  # as a power cut there: the door comes back with what the disk holds
        killed.append(phase)
        assert door.dirs.current() in (RUNNING, NEW)
        door.start()  # as systemd does, through the launcher
    assert rollout_done(fleet, rollout.id, 180)
    taps.stop()
    detail = get_rollout(engine, ADMIN, rollout.id)
    assert detail.state == "done" and detail.device_list[0].step == "healthy", detail
    assert door.dirs.current() == NEW and door.dirs.previous() == RUNNING
    assert wait_for(lambda: fleet.software("front-door") == NEW, 30)
    steps = [r["step"] for r in events_of(fleet, "front-door", "device.update")]
    assert steps[-1] == "healthy" and steps.count("healthy") == 1, steps
    # What a technician sees on the door.
    shown = hafen("edge", "releases", "-c", str(door.config))
    assert shown.splitlines() == [
        f"{RUNNING} (previous)",
        f"{NEW} (current)",
        f"update to {NEW} from {RUNNING} for rollout {rollout.id}: healthy",
    ]
    # Each decided tap reached the hub once. A card read in the instant before a kill may
    # not have been decided yet: at most one such per kill.
    seqs = [event["seq"] for event in events_of(fleet, "front-door", "door.decision")]
    assert len(seqs) == len(set(seqs))
    assert taps.missed == 0 and len(taps.read) - len(killed) <= len(seqs) <= len(taps.read)
