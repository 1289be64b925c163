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
from tests.support.fleet import RUNNING, Fleet
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


def test_one_door_updates_itself_and_says_healthy_from_the_new_version(fleet):
    door = fleet.door("front-door")
    assert wait_for(lambda: fleet.software("front-door") == RUNNING, 30)
    fleet.release(NEW)
    rollout = create_rollout(fleet.network.engine, ADMIN, RolloutIn(version=NEW, stages="100%"))
    done = wait_for(
        lambda: get_rollout(fleet.network.engine, ADMIN, rollout.id).state == "done", 180
    )
    detail = get_rollout(fleet.network.engine, ADMIN, rollout.id)
    assert done, (detail, door.log_text()[-3000:])
    assert [d.step for d in detail.device_list] == ["healthy"]
    assert door.dirs.current() == NEW
    assert wait_for(lambda: fleet.software("front-door") == NEW, 30)
