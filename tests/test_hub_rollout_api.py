"""Rollouts in the JSON API (issue 17): the releases the hub holds, starting a rollout, reading
it (each stage, each door's step with why and what it waits for), paging the list, and
pausing, resuming and aborting it; who may do which. On SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from hub.services.rollout_driver import advance
from tests.support.hub import as_user
from tests.support.rollouts import add_door, add_release, add_rollback, no_send, report

V = "1.4.0"


@pytest.fixture
def fleet(api):
    """Release 1.4.0; three doors at borna, one at leipzig-ost (olga's site), one at kiel
    on 1.4.0 already."""
    add_release(api.engine, V)
    for n in range(1, 4):
        add_door(api.engine, "borna", f"door-{n}")
    add_door(api.engine, "leipzig-ost", "door-1")
    add_door(api.engine, "kiel", "door-1", software=V)
    return api


def test_an_admin_starts_a_rollout_and_reads_each_doors_step(fleet):
    admin = as_user(fleet, "nadia")
    held = fleet.get("/releases", headers=admin)
    assert held.status_code == 200 and [r["version"] for r in held.json()] == [V]
    made = fleet.post("/rollouts", json={"version": V, "stages": "1,100%"}, headers=admin)
    assert made.status_code == 201, made.text
    body = made.json()
    assert (body["state"], body["created_by"], body["device_count"]) == ("running", "nadia", 5)
    assert [(s["spec"], s["device_count"]) for s in body["stage_list"]] == [("1", 1), ("100%", 3)]
    doors = {f"{d['site']}/{d['device']}": d for d in body["device_list"]}
    assert doors["kiel/door-1"]["why"] == "already on it" and doors["kiel/door-1"]["stage"] == 0
    later = [d for d in doors.values() if d["stage"] == 2]
    assert {d["waits_for"] for d in later} == {"stage"}
    assert {d["why"] for d in later} == {"stage 2 has not begun"}

    # The canary reports; its step and why show, and the rollout's counts follow.
    canary = next(door for door, d in doors.items() if d["stage"] == 1)
    advance(fleet.engine, no_send)  # the driver orders it (sending nothing: no broker here)
    report(fleet.engine, body["id"], canary, "rolled_back", V, running="1.3.0", detail="gate")
    shown = fleet.get(f"/rollouts/{body['id']}", headers=admin).json()
    door = next(d for d in shown["device_list"] if f"{d['site']}/{d['device']}" == canary)
    assert (door["step"], door["why"], door["rolled_back"]) == ("rolled_back", "gate", "gate")
    assert shown["failures"] == 1 and shown["steps"]["rolled_back"] == 1


def test_pause_resume_and_abort_answer_with_the_rollout_or_say_why_not(fleet):
    admin = as_user(fleet, "nadia")
    made = fleet.post("/rollouts", json={"version": V}, headers=admin).json()
    path = f"/rollouts/{made['id']}"
    paused = fleet.post(f"{path}/pause", headers=admin)
    assert paused.status_code == 200 and paused.json()["paused_reason"] == "by nadia"
    assert {d["waits_for"] for d in paused.json()["device_list"] if d["step"] == "pending"} == {
        "not_running"
    }
    again = fleet.post(f"{path}/pause", headers=admin)
    assert again.status_code == 409
    assert again.json()["detail"] == f"rollout {made['id']} is paused: there is nothing to pause"
    assert fleet.post(f"{path}/resume", headers=admin).json()["state"] == "running"
    assert fleet.post(f"{path}/abort", headers=admin).json()["state"] == "aborted"
    assert fleet.post(f"{path}/resume", headers=admin).status_code == 409
    assert fleet.post("/rollouts/999/abort", headers=admin).status_code == 404
    assert fleet.get("/rollouts/999", headers=admin).status_code == 404
    assert fleet.get("/rollouts/0", headers=admin).status_code == 422


@pytest.mark.parametrize(
    ("asked", "status", "why"),
    [
        ({"version": "9.9.9"}, 422, "the hub holds no release '9.9.9'"),
        ({"version": V, "stages": "1,10%"}, 422, "the last stage must be 100%"),
        ({"version": V, "sites": ["borne"]}, 422, "no site 'borne'"),
        ({"version": V, "devices": ["borna"]}, 422, "write a device as site/device"),
        ({"version": V, "max_failure_share": 1.5}, 422, "max_failure_share"),
        ({"version": V, "surprise": 1}, 422, "surprise"),
    ],
)
def test_a_rollout_that_cannot_be_made_is_refused_and_nothing_is_made(fleet, asked, status, why):
    admin = as_user(fleet, "nadia")
    refused = fleet.post("/rollouts", json=asked, headers=admin)
    assert refused.status_code == status and why in refused.text, refused.text
    assert fleet.get("/rollouts", headers=admin).json() == []


def test_a_door_in_a_live_rollout_is_a_conflict(fleet):
    admin = as_user(fleet, "nadia")
    first = fleet.post("/rollouts", json={"version": V, "sites": ["borna"]}, headers=admin)
    second = fleet.post("/rollouts", json={"version": V}, headers=admin)
    assert second.status_code == 409 and f"is in rollout {first.json()['id']}" in second.text


def test_the_list_is_newest_first_in_pages(fleet):
    admin = as_user(fleet, "nadia")
    made = []
    for door in ("borna/door-1", "borna/door-2", "borna/door-3"):
        made.append(fleet.post("/rollouts", json={"version": V, "devices": [door]}, headers=admin))
    ids = [m.json()["id"] for m in made]
    first = fleet.get("/rollouts", params={"limit": 2}, headers=admin).json()
    assert [r["id"] for r in first] == ids[::-1][:2]
    rest = fleet.get("/rollouts", params={"before_id": first[-1]["id"]}, headers=admin).json()
    assert [r["id"] for r in rest] == [ids[0]]
    assert fleet.get("/rollouts", params={"limit": 201}, headers=admin).status_code == 422


def test_operators_read_their_sites_doors_and_only_admins_steer(fleet):
    admin = as_user(fleet, "nadia")
    everywhere = fleet.post("/rollouts", json={"version": V}, headers=admin).json()
    olga, tim = as_user(fleet, "olga"), as_user(fleet, "tim")
    mine = fleet.get(f"/rollouts/{everywhere['id']}", headers=olga).json()
    assert [(d["site"], d["device"]) for d in mine["device_list"]] == [("leipzig-ost", "door-1")]
    assert mine["device_count"] == 1
    assert [r["device_count"] for r in fleet.get("/rollouts", headers=olga).json()] == [1]
    assert fleet.get(f"/rollouts/{everywhere['id']}", headers=tim).json()["device_count"] == 5
    assert fleet.get("/releases", headers=tim).status_code == 200
    for who in (olga, tim):
        assert fleet.post("/rollouts", json={"version": V}, headers=who).status_code == 403
        for verb in ("pause", "resume", "abort"):
            steer = fleet.post(f"/rollouts/{everywhere['id']}/{verb}", headers=who)
            assert steer.status_code == 403, (verb, steer.text)
    assert fleet.get(f"/rollouts/{everywhere['id']}", headers=admin).json()["state"] == "running"
    # A rollout of no door of hers is none to her.
    fleet.post(f"/rollouts/{everywhere['id']}/abort", headers=admin)
    borna = fleet.post("/rollouts", json={"version": V, "sites": ["borna"]}, headers=admin)
    assert fleet.get(f"/rollouts/{borna.json()['id']}", headers=olga).status_code == 404
    assert fleet.get("/rollouts", headers=olga).json()[0]["id"] == everywhere["id"]


def test_a_rollback_is_asked_for_and_the_releases_list_its_rollbacks(fleet):
    admin = as_user(fleet, "nadia")
    add_release(fleet.engine, "1.3.0")
    add_rollback(fleet.engine, "1.3.0", V)
    held = fleet.get("/releases", headers=admin).json()
    assert {r["version"]: r["rollbacks"] for r in held} == {"1.3.0": [V], V: []}
    unsaid = fleet.post("/rollouts", json={"version": "1.3.0"}, headers=admin)
    assert unsaid.status_code == 422
    assert "kiel/door-1 runs 1.4.0, newer than 1.3.0" in unsaid.json()["detail"]
    assert '"rollback": true' in unsaid.json()["detail"]
    made = fleet.post("/rollouts", json={"version": "1.3.0", "rollback": True}, headers=admin)
    assert made.status_code == 201, made.text
    doors = {f"{d['site']}/{d['device']}": d for d in made.json()["device_list"]}
    assert (doors["kiel/door-1"]["step"], doors["kiel/door-1"]["from_version"]) == (
        "pending",
        V,
    )
