"""`hafen hub rollout` end to end (issue 17): start a rollout, list it, show its stages and
each door's step with why, pause, resume and abort it; what it refuses says what to do.
On SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from hafen.cli import app
from hub.services.rollout_driver import advance
from tests.support.rollouts import add_door, add_release, add_rollback, report

V = "1.4.0"


@pytest.fixture
def rollout_cli(engine, hub_url, monkeypatch):
    """``hafen hub rollout ...`` on the test's store, with release 1.4.0 and doors at two
    sites (kiel's on 1.4.0 already)."""
    monkeypatch.delenv("HAFEN_HUB_CONFIG", raising=False)
    add_release(engine, V)
    add_door(engine, "borna", "door-1")
    add_door(engine, "borna", "door-2")
    add_door(engine, "kiel", "door-1", software=V)

    def run(*args: str):
        return CliRunner().invoke(app, ["hub", "rollout", *args, "--db", hub_url])

    return run


def test_a_rollout_is_started_followed_and_steered_from_the_command_line(rollout_cli, engine):
    started = rollout_cli("start", V, "--sites", "borna,kiel", "--stages", "1,100%")
    assert started.exit_code == 0, started.output
    assert started.output.startswith(
        "rollout 1: 1.4.0 to sites borna, kiel, 3 devices (1 already on it); stage 1 orders 1."
    )
    advance(engine, lambda site, device, order: None)  # as `hafen hub serve` would
    shown = rollout_cli("show", "1")
    assert shown.exit_code == 0, shown.output
    assert "stage 1 of 2; pauses past 0 failures, 30 min per device" in shown.output
    assert "already on it" in shown.output and "stage 2 has not begun" in shown.output
    canary = next(
        f"borna/{line.split('borna/')[1].split()[0]}"
        for line in shown.output.splitlines()
        if "borna/" in line and " ordered " in line
    )
    report(engine, 1, canary, "rolled_back", V, running="1.3.0", detail="gate: reader missing")
    advance(engine, lambda site, device, order: None)
    shown = rollout_cli("show", "1")
    assert "paused (by itself: 1 failure, more than max_failures 0" in shown.output
    assert "gate: reader missing" in shown.output
    listed = rollout_cli("list")
    assert listed.exit_code == 0 and "sites borna, kiel" in listed.output
    assert "paused" in listed.output
    assert rollout_cli("resume", "1").output == "rollout 1: running\n"
    assert rollout_cli("pause", "1").output.startswith("rollout 1: paused (by cli:")
    assert rollout_cli("abort", "1").output.startswith("rollout 1: aborted (by cli:")
    again = rollout_cli("abort", "1")
    assert again.exit_code == 2
    assert "rollout 1 is aborted: there is nothing to abort; hafen hub rollout show 1" in (
        again.output
    )


@pytest.mark.parametrize(
    ("args", "why"),
    [
        (("--stages", "1,10"), "--stages: the last stage must be 100% (every door"),
        (("--stages", "ten,100%"), "'ten' is neither a count of doors nor a share"),
        (("--max-failure-share", "2"), "--max-failure-share: Input should be less than or equal"),
        (("--device", "borna-door-1"), "'borna-door-1': write a device as site/device"),
        (("--sites", "borne"), "--sites: no site 'borne' (did you mean 'borna'?)"),
    ],
)
def test_a_bad_start_says_what_to_change_and_starts_nothing(rollout_cli, args, why):
    refused = rollout_cli("start", V, *args)
    assert refused.exit_code == 2
    assert refused.output.startswith("rollout not started: ")
    assert why in refused.output
    assert "rollout 1" not in rollout_cli("list").output


def test_a_missing_release_says_how_to_add_one(rollout_cli):
    refused = rollout_cli("start", "9.9.9")
    assert refused.exit_code == 2
    assert "add it first (hafen hub release add)" in refused.output
    assert "no rollout 7; hafen hub rollout list shows them" in rollout_cli("show", "7").output


def test_a_rollback_is_started_only_when_said_and_made(rollout_cli, engine):
    add_release(engine, "1.3.0")
    unsaid = rollout_cli("start", "1.3.0")
    assert unsaid.exit_code == 2
    assert unsaid.output.startswith(
        "rollout not started: VERSION: kiel/door-1 runs 1.4.0, newer than 1.3.0; taking doors"
        " back to an older version is a rollback"
    )
    assert "hafen hub rollout start 1.3.0 --rollback" in unsaid.output
    unmade = rollout_cli("start", "1.3.0", "--rollback")
    assert unmade.exit_code == 2
    assert "make it first (hafen hub release rollback 1.3.0 --from 1.4.0)" in unmade.output
    add_rollback(engine, "1.3.0", V)
    started = rollout_cli("start", "1.3.0", "--rollback")
    assert started.exit_code == 0, started.output
    assert started.output.startswith(
        "rollout 1: 1.3.0 to the whole network, 3 devices (2 already on it); stage 1 orders 1."
    )


def test_what_a_door_says_is_shown_as_text_never_as_markup(rollout_cli, engine):
    """Rich markup ("[/x]" ended the command) and terminal escapes in a door's why."""
    assert rollout_cli("start", V, "--sites", "borna", "--stages", "100%").exit_code == 0
    advance(engine, lambda site, device, order: None)
    said = "[/x] [bold]no\x1b]0;owned\x07 room\x9b"
    report(engine, 1, "borna/door-1", "failed", V, running="1.3.0", detail=said)
    advance(engine, lambda site, device, order: None)
    for args in (("show", "1"), ("list",)):
        shown = rollout_cli(*args)
        assert shown.exit_code == 0, shown.output
        assert "\x1b" not in shown.output and "\x07" not in shown.output
    assert "[/x] [bold]no ]0;owned  room" in rollout_cli("show", "1").output
