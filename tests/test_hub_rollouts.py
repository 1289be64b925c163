"""Starting rollouts (hub.services.rollouts, issue 17): which doors a rollout targets, how they
fall into stages, what is refused with what to do, who may steer and who may read; and the
sites' update windows. On SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from hub import db
from hub.services.errors import Conflict, Forbidden, Invalid, NotFound
from hub.services.rollout_models import RolloutIn, stage_sizes
from hub.services.rollout_reads import get_rollout, list_rollouts
from hub.services.rollouts import abort_rollout, create_rollout, pause_rollout, resume_rollout
from hub.services.sites import SitePatch, update_site
from tests.support.hub import as_user
from tests.support.rollouts import (
    ADMIN,
    TECHNICIAN,
    add_door,
    add_release,
    add_rollback,
    operator,
    steps,
)


@pytest.fixture
def fleet(engine):
    """Release 1.4.0 and doors at three sites: one revoked, one never enrolled, one on
    1.4.0 already, one that never reported."""
    add_release(engine, "1.4.0")
    for n in range(1, 5):
        add_door(engine, "borna", f"door-{n}")
    add_door(engine, "kiel", "door-1", software="1.4.0")
    add_door(engine, "kiel", "door-2", revoked=True)
    add_door(engine, "kiel", "door-3", enrolled=False)
    add_door(engine, "leer", "door-1", software=None)
    return engine


def test_the_whole_network_is_every_enrolled_unrevoked_door(fleet):
    made = create_rollout(fleet, ADMIN, RolloutIn(version="1.4.0"))
    assert made.state == "running" and made.created_by == "nadia"
    assert steps(fleet, made.id) == {
        "borna/door-1": "pending",
        "borna/door-2": "pending",
        "borna/door-3": "pending",
        "borna/door-4": "pending",
        "kiel/door-1": "healthy",
        "leer/door-1": "pending",
    }
    on_it = next(d for d in made.device_list if d.site == "kiel")
    assert (on_it.stage, on_it.detail) == (0, "already on it")
    # 1, then up to 10 % of five (one), then all: the canary alone in stage 1.
    assert [(s.spec, s.device_count) for s in made.stage_list] == [
        ("1", 1),
        ("10%", 0),
        ("100%", 4),
    ]
    assert made.target.describe() == "the whole network"


def test_stages_are_fixed_by_version_and_door(fleet):
    first = create_rollout(fleet, ADMIN, RolloutIn(version="1.4.0", stages="2,100%"))
    abort_rollout(fleet, ADMIN, first.id)
    again = create_rollout(fleet, ADMIN, RolloutIn(version="1.4.0", stages="2,100%"))
    staged = {(d.site, d.device): d.stage for d in first.device_list}
    assert staged == {(d.site, d.device): d.stage for d in again.device_list}
    assert sorted(staged.values()) == [0, 1, 1, 2, 2, 2]


def test_stage_sizes_are_cumulative_and_never_shrink():
    assert stage_sizes("1,10%,100%", 200) == [1, 20, 200]
    assert stage_sizes("50,10%,100%", 200) == [50, 50, 200]
    assert stage_sizes("5,100%", 3) == [3, 3]


@pytest.mark.parametrize(
    ("stages", "why"),
    [
        ("1,10%", "the last stage must be 100%"),
        ("one,100%", "'one' is neither a count of doors nor a share"),
        ("150%", "a share is 1% to 100%"),
        (",".join(["1"] * 10 + ["100%"]), "give 1 to 10 stages"),
        ("0,100%", "a stage counts 1 to 10,000 doors"),
    ],
)
def test_a_bad_stages_spec_says_how_to_write_one(stages, why):
    with pytest.raises(ValidationError, match=why):
        RolloutIn(version="1.4.0", stages=stages)


def test_sites_and_named_devices_are_targeted_together(fleet):
    made = create_rollout(
        fleet, ADMIN, RolloutIn(version="1.4.0", sites=["leer"], devices=["borna/door-2"])
    )
    assert steps(fleet, made.id) == {"borna/door-2": "pending", "leer/door-1": "pending"}
    assert made.target.describe() == "sites leer; devices borna/door-2"


@pytest.mark.parametrize(
    ("asked", "why"),
    [
        ({"version": "9.9.9"}, "the hub holds no release '9.9.9'; add it first"),
        ({"sites": ["borne"]}, r"no site 'borne' \(did you mean 'borna'\?\)"),
        ({"devices": ["kiel/door-2"]}, "kiel/door-2 is revoked; enrol it again"),
        ({"devices": ["kiel/door-3"]}, "kiel/door-3 was never enrolled; enrol it first"),
        ({"devices": ["kiel/door-9"]}, "no device 'kiel/door-9'"),
    ],
)
def test_what_cannot_be_targeted_is_refused_and_nothing_is_made(fleet, asked, why):
    with pytest.raises(Invalid, match=why):
        create_rollout(fleet, ADMIN, RolloutIn(**{"version": "1.4.0", **asked}))
    assert list_rollouts(fleet, ADMIN) == []


def test_a_rollout_of_doors_all_on_the_version_is_done_at_once(fleet):
    made = create_rollout(fleet, ADMIN, RolloutIn(version="1.4.0", devices=["kiel/door-1"]))
    assert made.state == "done" and made.steps == {"healthy": 1}
    # It holds no door: another rollout may take it.
    create_rollout(fleet, ADMIN, RolloutIn(version="1.4.0", sites=["kiel"]))


def test_a_rollout_back_to_an_older_version_says_so_and_has_each_rollback(fleet):
    add_release(fleet, "1.3.0")
    add_door(fleet, "leer", "door-2", software="1.4.1")
    add_door(fleet, "leer", "door-3", software="1.4.1")
    add_door(fleet, "leer", "door-4", software="a-build")  # no PEP 440: cannot be told
    # Not said: no door goes back by a typo.
    with pytest.raises(Invalid) as refused:
        create_rollout(fleet, ADMIN, RolloutIn(version="1.3.0"))
    assert str(refused.value) == (
        "version: kiel/door-1 runs 1.4.0, newer than 1.3.0, and 2 more devices run a newer"
        ' version too; taking doors back to an older version is a rollback: say so ("rollback":'
        " true; hafen hub rollout start 1.3.0 --rollback), or leave those devices out"
    )
    # Said, but the doors' versions have no rollback to 1.3.0 yet; then one has.
    with pytest.raises(Invalid) as refused:
        create_rollout(fleet, ADMIN, RolloutIn(version="1.3.0", rollback=True))
    assert str(refused.value) == (
        "version: the hub holds no signed rollback to 1.3.0 from 1.4.0, 1.4.1, which 3 devices"
        " run (such as kiel/door-1); make it first (hafen hub release rollback 1.3.0 --from"
        " 1.4.0; hafen hub release rollback 1.3.0 --from 1.4.1)"
    )
    add_rollback(fleet, "1.3.0", "1.4.1")
    add_rollback(fleet, "1.4.0", "1.4.1")  # to another release: no help
    with pytest.raises(Invalid, match=r"from 1\.4\.0, which kiel/door-1 runs; make it first"):
        create_rollout(fleet, ADMIN, RolloutIn(version="1.3.0", rollback=True))
    assert list_rollouts(fleet, ADMIN) == []
    add_rollback(fleet, "1.3.0", "1.4.0")
    made = create_rollout(fleet, ADMIN, RolloutIn(version="1.3.0", rollback=True))
    assert steps(fleet, made.id) == {
        "borna/door-1": "healthy",
        "borna/door-2": "healthy",
        "borna/door-3": "healthy",
        "borna/door-4": "healthy",
        "kiel/door-1": "pending",
        "leer/door-1": "pending",
        "leer/door-2": "pending",
        "leer/door-3": "pending",
        "leer/door-4": "pending",
    }
    back = {f"{d.site}/{d.device}": d.from_version for d in made.device_list}
    assert (back["kiel/door-1"], back["leer/door-2"]) == ("1.4.0", "1.4.1")
    # Where no door is newer, a rollout needs no word of it.
    abort_rollout(fleet, ADMIN, made.id)
    create_rollout(fleet, ADMIN, RolloutIn(version="1.3.0", sites=["borna"]))


def test_a_door_in_a_live_rollout_cannot_be_taken_by_another(fleet):
    add_release(fleet, "1.4.1")
    first = create_rollout(fleet, ADMIN, RolloutIn(version="1.4.0", sites=["borna"]))
    with pytest.raises(
        Conflict, match=rf"borna/door-\d \(and 1 more devices\) is in rollout {first.id}"
    ):
        create_rollout(
            fleet, ADMIN, RolloutIn(version="1.4.1", devices=["borna/door-1", "borna/door-2"])
        )
    pause_rollout(fleet, ADMIN, first.id)
    with pytest.raises(Conflict, match=f"is in rollout {first.id} \\(paused"):
        create_rollout(fleet, ADMIN, RolloutIn(version="1.4.1"))
    # Other doors are free meanwhile; and once it is aborted, its doors are too.
    create_rollout(fleet, ADMIN, RolloutIn(version="1.4.1", sites=["leer"]))
    abort_rollout(fleet, ADMIN, first.id)
    create_rollout(fleet, ADMIN, RolloutIn(version="1.4.1", sites=["borna"]))


def test_pause_resume_and_abort_only_from_where_they_make_sense(fleet):
    made = create_rollout(fleet, ADMIN, RolloutIn(version="1.4.0"))
    paused = pause_rollout(fleet, ADMIN, made.id)
    assert (paused.state, paused.paused_reason) == ("paused", "by nadia")
    with pytest.raises(Conflict, match=f"rollout {made.id} is paused: there is nothing to pause"):
        pause_rollout(fleet, ADMIN, made.id)
    assert resume_rollout(fleet, ADMIN, made.id).state == "running"
    assert abort_rollout(fleet, ADMIN, made.id).state == "aborted"
    with pytest.raises(Conflict, match="is aborted: there is nothing to resume"):
        resume_rollout(fleet, ADMIN, made.id)
    with pytest.raises(NotFound, match="no rollout 999"):
        abort_rollout(fleet, ADMIN, 999)


def test_operators_read_the_rollouts_of_their_sites_and_steer_none(fleet):
    borna = create_rollout(fleet, ADMIN, RolloutIn(version="1.4.0", sites=["borna"]))
    leer = create_rollout(fleet, ADMIN, RolloutIn(version="1.4.0", sites=["leer", "kiel"]))
    olga = operator("leer")
    assert [r.id for r in list_rollouts(fleet, olga)] == [leer.id]
    seen = get_rollout(fleet, olga, leer.id)
    assert [(d.site, d.device) for d in seen.device_list] == [("leer", "door-1")]
    assert seen.device_count == 1  # kiel's door is not hers to count
    with pytest.raises(NotFound):
        get_rollout(fleet, olga, borna.id)
    with pytest.raises(Forbidden):
        pause_rollout(fleet, olga, leer.id)
    with pytest.raises(Forbidden):
        create_rollout(fleet, TECHNICIAN, RolloutIn(version="1.4.0"))
    assert [r.id for r in list_rollouts(fleet, TECHNICIAN)] == [leer.id, borna.id]


def test_a_site_takes_an_update_window_like_its_opening_hours(fleet):
    nights = [{"days": [0, 1, 2, 3, 4], "start": "22:00", "end": "05:00"}]
    site = update_site(fleet, None, ADMIN, "borna", SitePatch(update_window=nights))
    assert site.update_window is not None and site.update_window[0].start == "22:00"
    with pytest.raises(ValidationError, match="give at least one window, or null"):
        SitePatch(update_window=[])
    with pytest.raises(ValidationError, match="update_window"):
        SitePatch(update_window=[{"days": [0], "start": "25:00", "end": "05:00"}])
    with pytest.raises(Forbidden, match="ask a network admin"):
        update_site(fleet, None, operator("borna"), "borna", SitePatch(update_window=None))
    cleared = update_site(fleet, None, ADMIN, "borna", SitePatch(update_window=None))
    assert cleared.update_window is None


def test_the_sites_api_sets_and_shows_the_update_window(api):
    admin = as_user(api, "nadia")
    assert api.post("/sites", json={"id": "borna", "name": "Borna"}, headers=admin).is_success
    nights = [{"days": ["sat", "sun"], "start": "00:00", "end": "06:00"}]
    changed = api.patch("/sites/borna", json={"update_window": nights}, headers=admin)
    assert changed.status_code == 200, changed.text
    assert api.get("/sites/borna", headers=admin).json()["update_window"][0]["days"] == [5, 6]
    refused = api.patch("/sites/borna", json={"update_window": []}, headers=admin)
    assert refused.status_code == 422
    assert "give at least one window, or null" in refused.text


def test_an_operator_sees_no_other_sites_door_in_the_target_or_the_reason(engine):
    add_release(engine, "1.4.0")
    add_door(engine, "borna", "door-1")
    add_door(engine, "kiel", "door-1")
    asked = RolloutIn(version="1.4.0", sites=["borna", "kiel"], devices=["kiel/door-1"])
    rollout = create_rollout(engine, ADMIN, asked).id
    why = "by itself: 1 failure, more than max_failures 0; last kiel/door-1 failed: kiel's why"
    with engine.begin() as conn:
        conn.execute(db.rollouts.update().values(state="paused", paused_reason=why))
    mine = get_rollout(engine, operator("borna"), rollout)
    assert (mine.target.sites, mine.target.devices) == (["borna"], [])
    assert mine.paused_reason == "by itself: 1 failure, more than max_failures 0"
    assert [d.site for d in mine.device_list] == ["borna"]
    [listed] = list_rollouts(engine, operator("borna"))
    assert "kiel" not in listed.target.describe() and "kiel" not in (listed.paused_reason or "")
    theirs = get_rollout(engine, operator("kiel"), rollout)
    assert theirs.paused_reason == why  # their own door: named
    assert get_rollout(engine, ADMIN, rollout).target.sites == ["borna", "kiel"]
