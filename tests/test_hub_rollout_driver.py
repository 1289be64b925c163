"""Driving rollouts (hub.services.rollout_driver.advance, issue 17), tick by tick with a clock
of the test's own, the orders going out through a real mosquitto and each checked as the
door checks it: stages, the canary, limits, deadlines, update windows, re-sends, pause and
abort, two hubs at once. On SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from hub import db
from hub.rollout_runner import RolloutRunner
from hub.services.rollout_driver import advance
from hub.services.rollout_models import RolloutIn
from hub.services.rollout_reads import get_rollout
from hub.services.rollouts import (
    abort_rollout,
    create_rollout,
    ordered_release,
    pause_rollout,
    resume_rollout,
)
from hub.services.sites import SitePatch, update_site
from sim.broker import LocalBroker
from tests.support.rollouts import (
    ADMIN,
    add_door,
    add_release,
    hub_orders,
    report,
    set_online,
    steps,
)
from tests.support.waiting import wait_for

V = "1.4.0"
ORDER_ARGS = {"version": V}


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    with LocalBroker(tmp_path_factory.mktemp("broker")) as running:
        yield running


@pytest.fixture
def doors(engine):
    """Release 1.4.0 and four doors at borna, all online on 1.3.0."""
    add_release(engine, V)
    for n in range(1, 5):
        add_door(engine, "borna", f"door-{n}")
    return engine


@pytest.fixture
def orders(broker, doors):
    with hub_orders(broker, doors) as (send, caught):
        yield send, caught


def start(engine, **asked) -> int:
    return create_rollout(engine, ADMIN, RolloutIn(version=V, **asked)).id


def ordered(caught, expected: int, rollout: int) -> list[str]:
    """The doors ordered since the last look (each order verified by its door)."""
    taken = caught.take(expected)
    assert all(args == {"rollout": rollout, **ORDER_ARGS} for _door, args in taken)
    return sorted(door for door, _args in taken)


def test_stages_begin_only_when_every_door_before_is_healthy(doors, orders):
    send, caught = orders
    rollout = start(doors, stages="1,50%,100%")
    advance(doors, send)
    [canary] = ordered(caught, 1, rollout)
    report(doors, rollout, canary, "downloading", V, running="1.3.0")
    report(doors, rollout, canary, "installed", V, running="1.3.0")
    advance(doors, send)
    assert ordered(caught, 0, rollout) == []  # the canary is under way: nobody else yet
    report(doors, rollout, canary, "healthy", V)
    tick = advance(doors, send)
    assert tick.begun == [(rollout, 2)]
    [second] = ordered(caught, 1, rollout)
    report(doors, rollout, second, "healthy", V)
    advance(doors, send)
    rest = ordered(caught, 2, rollout)
    assert sorted({canary, second, *rest}) == [f"borna/door-{n}" for n in range(1, 5)]
    for door in rest:
        report(doors, rollout, door, "healthy", V)
    assert advance(doors, send).done == [rollout]
    done = get_rollout(doors, ADMIN, rollout)
    assert done.state == "done" and done.steps == {"healthy": 4}
    assert all(stage.finished for stage in done.stage_list)
    start(doors)  # its doors are free again


def test_a_failed_canary_pauses_the_rollout_before_another_door_is_ordered(doors, orders):
    send, caught = orders
    rollout = start(doors)
    advance(doors, send)
    [canary] = ordered(caught, 1, rollout)
    report(doors, rollout, canary, "rolled_back", V, running="1.3.0", detail="health gate: reader")
    tick = advance(doors, send)
    assert tick.paused == [rollout] and ordered(caught, 0, rollout) == []
    paused = get_rollout(doors, ADMIN, rollout)
    assert paused.state == "paused"
    assert paused.paused_reason == (
        "by itself: 1 failure, more than max_failures 0;"
        f" last {canary} rolled_back: health gate: reader"
    )
    # Resumed, the failure is accepted: the next stages begin (10 % of 3 is the canary
    # already; then the other three).
    resume_rollout(doors, ADMIN, rollout)
    assert advance(doors, send).begun == [(rollout, 2), (rollout, 3)]
    assert len(ordered(caught, 3, rollout)) == 3


def test_a_share_of_failures_pauses_in_the_middle_of_a_stage(doors, orders):
    send, caught = orders
    for n in range(5, 11):
        add_door(doors, "borna", f"door-{n}")
    rollout = start(doors, stages="100%", max_failure_share=0.2)
    advance(doors, send, max_sends=5)  # half the stage ordered this tick
    first = ordered(caught, 5, rollout)
    for door in first[:2]:
        report(doors, rollout, door, "failed", V, running="1.3.0", detail="disk full")
    advance(doors, send, max_sends=3)  # 2 of 10: not more than 20 %
    assert len(ordered(caught, 3, rollout)) == 3
    report(doors, rollout, first[2], "refused", V, running="1.3.0", detail="bad signature")
    tick = advance(doors, send)
    assert tick.paused == [rollout] and ordered(caught, 0, rollout) == []
    reason = get_rollout(doors, ADMIN, rollout).paused_reason
    assert reason is not None and "3 failures of 10 devices (30%)" in reason
    assert list(steps(doors, rollout).values()).count("pending") == 2


def test_a_door_silent_past_its_deadline_is_failed_with_why(doors, orders):
    send, caught = orders
    rollout = start(doors, stages="100%", max_failures=4, deadline_minutes=30)
    t0 = datetime.now(UTC)
    advance(doors, send, t0)
    quiet, busy, *_ = ordered(caught, 4, rollout)
    report(doors, rollout, busy, "installed", V, running="1.3.0")
    quiet_site, quiet_device = quiet.split("/")
    set_online(doors, quiet_site, quiet_device, False)  # gone offline: its deadline runs on
    advance(doors, send, t0 + timedelta(minutes=29, seconds=59))
    assert "failed" not in steps(doors, rollout).values()
    assert advance(doors, send, t0 + timedelta(minutes=30)).expired == 4
    why = {f"{d.site}/{d.device}": d.detail for d in get_rollout(doors, ADMIN, rollout).device_list}
    assert why[quiet] == "no report within 30 minutes"
    assert why[busy] == "no outcome within 30 minutes (last step: installed)"
    # A healthy that comes after changes nothing: the deadline's failure is final.
    report(doors, rollout, busy, "healthy", V)
    assert steps(doors, rollout)[busy] == "failed"


def test_a_door_is_ordered_only_inside_its_sites_update_window(doors, orders):
    send, caught = orders
    add_door(doors, "kiel", "door-1")
    nights = [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "22:00", "end": "05:00"}]
    update_site(doors, None, ADMIN, "borna", SitePatch(update_window=nights))
    rollout = start(doors, stages="100%")
    wednesday_noon = datetime(2026, 12, 9, 11, 0, tzinfo=UTC)  # 12:00 in Berlin
    advance(doors, send, wednesday_noon)
    assert ordered(caught, 1, rollout) == ["kiel/door-1"]
    waiting = get_rollout(doors, ADMIN, rollout, wednesday_noon).device_list
    assert {d.waiting for d in waiting if d.site == "borna"} == {"outside its site's update window"}
    report(doors, rollout, "kiel/door-1", "healthy", V)
    advance(doors, send, wednesday_noon + timedelta(hours=10))  # 22:00 in Berlin
    assert len(ordered(caught, 4, rollout)) == 4


def test_an_order_is_sent_again_each_minute_until_the_door_answers(doors, orders):
    send, caught = orders
    rollout = start(doors, devices=["borna/door-1", "borna/door-2"], stages="100%")
    set_online(doors, "borna", "door-2", False)
    t0 = datetime.now(UTC)
    advance(doors, send, t0)
    assert ordered(caught, 1, rollout) == ["borna/door-1"]  # door-2 is offline: not ordered
    assert advance(doors, send, t0 + timedelta(seconds=59)).resent == []
    tick = advance(doors, send, t0 + timedelta(seconds=60))
    assert tick.resent == [(rollout, "borna", "door-1")]
    assert ordered(caught, 1, rollout) == ["borna/door-1"]  # a new command: the door takes it
    report(doors, rollout, "borna/door-1", "downloading", V, running="1.3.0")
    assert advance(doors, send, t0 + timedelta(minutes=3)).resent == []
    set_online(doors, "borna", "door-2", True)
    advance(doors, send, t0 + timedelta(minutes=3))
    assert ordered(caught, 1, rollout) == ["borna/door-2"]
    # Paused, the door ordered still hears its order again; aborted, no more.
    pause_rollout(doors, ADMIN, rollout)
    assert advance(doors, send, t0 + timedelta(minutes=4)).resent == [(rollout, "borna", "door-2")]
    abort_rollout(doors, ADMIN, rollout)
    assert advance(doors, send, t0 + timedelta(minutes=5)).resent == []
    caught.take(1)
    # The door finishes anyway, and says so: it is recorded.
    report(doors, rollout, "borna/door-2", "healthy", V)
    assert steps(doors, rollout)["borna/door-2"] == "healthy"


def test_an_aborted_rollout_orders_nobody_more(doors, orders):
    send, caught = orders
    rollout = start(doors, stages="1,100%")
    advance(doors, send)
    [canary] = ordered(caught, 1, rollout)
    abort_rollout(doors, ADMIN, rollout)
    report(doors, rollout, canary, "healthy", V)
    tick = advance(doors, send)
    assert (tick.begun, tick.ordered) == ([], []) and ordered(caught, 0, rollout) == []
    assert sorted(steps(doors, rollout).values()) == ["healthy", "pending", "pending", "pending"]


def test_two_hubs_ticking_at_once_order_each_door_once(doors, orders, hub_url):
    send, caught = orders
    rollout = start(doors, stages="100%")
    other = db.connect(hub_url)
    barrier = threading.Barrier(2)

    def tick(engine) -> None:
        barrier.wait()
        advance(engine, send)

    hubs = [threading.Thread(target=tick, args=(e,)) for e in (doors, other)]
    for hub in hubs:
        hub.start()
    for hub in hubs:
        hub.join()
    other.dispose()
    assert ordered(caught, 4, rollout) == [f"borna/door-{n}" for n in range(1, 5)]


def test_hub_serve_drives_the_rollouts_in_a_thread_of_its_own(doors, orders):
    _send, caught = orders
    rollout = start(doors, stages="100%")
    runner = RolloutRunner(doors, caught.publisher, every=0.05).start()
    try:
        assert len(ordered(caught, 4, rollout)) == 4
        for n in range(1, 5):
            report(doors, rollout, f"borna/door-{n}", "healthy", V)
        assert wait_for(lambda: get_rollout(doors, ADMIN, rollout).state == "done", 5)
    finally:
        runner.stop()


def test_a_door_may_download_only_the_release_a_rollout_ordered_for_it(doors, orders):
    send, caught = orders
    add_release(doors, "1.4.1")
    rollout = start(doors, stages="1,100%")
    advance(doors, send)
    [canary] = ordered(caught, 1, rollout)
    site, device = canary.split("/")
    assert ordered_release(doors, site, device, V)
    assert not ordered_release(doors, site, device, "1.4.1")
    waiting_site, waiting_device = next(d for d in steps(doors, rollout) if d != canary).split("/")
    assert not ordered_release(doors, waiting_site, waiting_device, V)


def test_a_door_revoked_after_the_start_is_not_ordered_though_its_state_says_online(
    doors, orders
):
    send, caught = orders
    rollout = start(doors, stages="100%")
    with doors.begin() as conn:  # its will was lost: its last state still says online
        conn.execute(
            db.devices.update()
            .where(db.devices.c.site == "borna", db.devices.c.id == "door-4")
            .values(revoked_at=datetime.now(UTC))
        )
    advance(doors, send)
    assert ordered(caught, 3, rollout) == [f"borna/door-{n}" for n in range(1, 4)]
    # Never ordered, it would hold its stage for ever: it leaves the rollout, as the network.
    left = get_rollout(doors, ADMIN, rollout)
    assert [d.device for d in left.device_list] == ["door-1", "door-2", "door-3"]
    for door in ("door-1", "door-2", "door-3"):
        report(doors, rollout, f"borna/{door}", "healthy", V)
    assert advance(doors, send).done == [rollout]


def test_a_window_about_to_close_orders_no_one_and_no_one_again(doors, orders):
    """An update takes minutes: it is neither begun nor sent again in a window's last
    quarter hour, so it never runs into opening hours."""
    send, caught = orders
    nights = [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "22:00", "end": "05:00"}]
    update_site(doors, None, ADMIN, "borna", SitePatch(update_window=nights))
    rollout = start(doors, devices=["borna/door-1"], stages="100%")
    four_fifty = datetime(2026, 12, 10, 3, 50, tzinfo=UTC)  # 04:50 in Berlin, a Thursday
    advance(doors, send, four_fifty)
    assert ordered(caught, 0, rollout) == []
    four_forty = four_fifty - timedelta(minutes=10)
    advance(doors, send, four_forty)
    assert ordered(caught, 1, rollout) == ["borna/door-1"]
    advance(doors, send, four_fifty + timedelta(minutes=1))  # no answer, a minute later
    assert ordered(caught, 0, rollout) == []
