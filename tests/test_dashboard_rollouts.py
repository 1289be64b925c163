"""The dashboard's rollouts (issue 17): a network admin starts one from the releases the hub
holds, follows each stage and each door's step (why, since when, what it waits for), and
pauses, resumes and aborts it (after a confirmation); the fleet links a door to its rollout.
Operators see only their sites' doors, technicians read, and neither gets a control. In
English and German; on SQLite and PostgreSQL."""

from __future__ import annotations

import re

import pytest

from hub.services.rollout_driver import advance
from hub.web import rollout_pages
from tests.support.pages import CROSS_SITE, signed_in
from tests.support.rollouts import add_door, add_release, no_send, report, steps

V = "1.4.0"
#: The form "Start a rollout" as a network admin fills it in: borna's doors, canary first.
START = {"version": V, "target": "sites", "sites": ["borna"], "stages": "1,100%"}
START |= {"max_failures": "0", "max_failure_percent": "", "deadline_minutes": "30"}


@pytest.fixture
def hub(api):
    """Release 1.4.0 (and 1.3.9, older); three doors at borna and one at leipzig-ost
    (olga's site); nadia, olga and tim."""
    add_release(api.engine, "1.3.9")
    add_release(api.engine, V)
    for n in range(1, 4):
        add_door(api.engine, "borna", f"door-{n}")
    add_door(api.engine, "leipzig-ost", "door-1")
    return api


def row(page: str, attribute: str, value: str) -> str:
    """The table row with ``data-<attribute>="<value>"``."""
    found = re.search(rf'<tr [^>]*data-{attribute}="{value}".*?</tr>', page, re.S)
    assert found, f"no row {attribute}={value}"
    return found.group(0)


def main(page: str) -> str:
    """The page without its bar (whose sign-out is a form too)."""
    return page.split("</header>", 1)[1]


def test_an_admin_starts_a_rollout_follows_it_and_steers_it(hub):
    nadia = signed_in(hub, "nadia")
    listed = nadia.get("/ui/rollouts")
    assert listed.status_code == 200
    assert '<a href="/ui/rollouts" aria-current="page">Rollouts</a>' in listed.text
    assert "default-src 'self'" in listed.headers["content-security-policy"]
    assert "No rollouts yet." in listed.text
    assert f'<option value="{V}">' in listed.text and '<option value="1.3.9">' in listed.text
    assert 'name="sites" value="borna"' in listed.text

    started = nadia.post("/ui/rollouts", data=START, follow_redirects=False)
    assert started.status_code == 303, started.text
    where = started.headers["location"]
    number = int(where.rsplit("/", 1)[1])
    assert set(steps(hub.engine, number)) == {"borna/door-1", "borna/door-2", "borna/door-3"}
    shown = nadia.get(where).text
    assert 'data-state="running"' in shown and "stage 1 of 2" in shown
    assert "pauses at the first failure; 30 minutes per door" in shown
    assert "sites borna" in shown and "3 doors" in shown
    later = [d for d, _ in _doors(shown) if "stage 2 has not begun" in row(shown, "device", d)]
    assert len(later) == 2
    assert f'action="/ui/rollouts/{number}/pause"' in shown and "/abort" in shown

    # The canary is ordered, and rolls back: its step, why and time show, first in the list.
    advance(hub.engine, no_send)
    canary = next(d for d, step in steps(hub.engine, number).items() if step == "ordered")
    report(hub.engine, number, canary, "downloading", V, running="1.3.0")
    assert 'data-step="downloading"' in row(nadia.get(where).text, "device", canary)
    report(hub.engine, number, canary, "rolled_back", V, running="1.3.0", detail="gate: no reader")
    shown = nadia.get(where).text
    canary_row = row(shown, "device", canary)
    assert '<span class="badge step" data-step="rolled_back">rolled back</span>' in canary_row
    assert "gate: no reader" in canary_row and "<time datetime=" in canary_row
    assert _doors(shown)[0] == (canary, "rolled_back")
    assert "1 healthy" not in shown and "0 healthy, 1 failed" in shown

    # The fleet links each door to its rollout while it runs.
    fleet = nadia.get("/ui/fleet").text
    assert f'href="/ui/rollouts/{number}"' in row(fleet, "device", "borna/door-2")
    assert "/ui/rollouts/" not in row(fleet, "device", "leipzig-ost/door-1")

    # Pause, resume, then abort after its confirmation.
    assert nadia.post(f"{where}/pause", follow_redirects=False).headers["location"] == where
    paused = nadia.get(where).text
    assert 'data-state="paused"' in paused and "Why: by nadia" in paused
    assert "not ordered: the rollout is paused" in paused and f"{where}/resume" in paused
    assert nadia.post(f"{where}/resume").status_code == 200
    confirm = nadia.get(f"{where}/abort")
    assert confirm.status_code == 200 and f'action="{where}/abort"' in confirm.text
    assert steps(hub.engine, number)[canary] == "rolled_back"
    aborted = nadia.post(f"{where}/abort")
    assert aborted.status_code == 200 and 'data-state="aborted"' in aborted.text
    assert "/pause" not in aborted.text and "/abort" not in main(aborted.text)
    again = nadia.post(f"{where}/abort")
    assert again.status_code == 409 and "is aborted: there is nothing to abort" in again.text
    assert "/ui/rollouts/" not in nadia.get("/ui/fleet").text
    listed = row(nadia.get("/ui/rollouts").text, "rollout", str(number))
    assert '<td data-count="failed" class="bad">1</td>' in listed and ">aborted<" in listed


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"stages": "1,10%"}, "Not started: stages: the last stage must be 100%"),
        ({"sites": []}, "choose the sites, or the whole network"),
        ({"version": "9.9.9"}, "the hub holds no release &#39;9.9.9&#39;"),
        ({"max_failure_percent": "0.5"}, "a whole number from 1 to 100"),
        ({"deadline_minutes": "٣٠"}, "a whole number from 1 to 10080"),
    ],
)
def test_a_start_that_cannot_be_made_comes_back_on_the_form_as_typed(hub, change, why):
    nadia = signed_in(hub, "nadia")
    refused = nadia.post("/ui/rollouts", data=START | change)
    assert refused.status_code == 422, refused.text
    assert why in refused.text
    assert f'value="{(START | change)["stages"]}"' in refused.text
    assert "No rollouts yet." in refused.text and steps(hub.engine, 1) == {}


def test_operators_and_technicians_read_and_steer_nothing(hub):
    nadia = signed_in(hub, "nadia")
    started = nadia.post("/ui/rollouts", data=START | {"target": "network"}, follow_redirects=False)
    number = int(started.headers["location"].rsplit("/", 1)[1])
    borna_only = nadia.post("/ui/rollouts", data=START | {"version": "1.3.9"})
    assert borna_only.status_code == 409  # borna's doors are in the first one
    where = f"/ui/rollouts/{number}"

    olga = signed_in(hub, "olga")
    mine = olga.get(where).text
    assert [d for d, _ in _doors(mine)] == ["leipzig-ost/door-1"] and "1 door" in mine
    listed = olga.get("/ui/rollouts").text
    assert "<form" not in main(listed) and row(listed, "rollout", str(number))
    tim = signed_in(hub, "tim")
    assert len(_doors(tim.get(where).text)) == 4
    for who in (olga, tim):
        shown = who.get(where).text
        assert "<form" not in main(shown) and "/abort" not in shown
        assert who.get(f"{where}/abort").status_code == 403
        for verb in ("pause", "resume", "abort"):
            assert who.post(f"{where}/{verb}").status_code == 403, verb
        assert who.post("/ui/rollouts", data=START).status_code == 403
    # A network admin's browser, made to post by another site.
    assert nadia.post(f"{where}/pause", headers=CROSS_SITE).status_code == 403
    assert 'data-state="running"' in nadia.get(where).text
    # A rollout without a door of olga's is none to her.
    nadia.post(f"{where}/abort")
    borna = nadia.post("/ui/rollouts", data=START, follow_redirects=False).headers["location"]
    assert olga.get(borna).status_code == 404
    assert olga.get("/ui/rollouts/999").status_code == 404


def test_the_pages_speak_german(hub):
    nadia = signed_in(hub, "nadia", lang="de")
    where = nadia.post("/ui/rollouts", data=START, follow_redirects=False).headers["location"]
    shown = nadia.get(where)
    assert shown.headers["content-language"] == "de"
    assert "Stufe 2 hat noch nicht begonnen" in shown.text and "noch nicht beauftragt" in shown.text
    assert ">läuft<" in shown.text and "hält beim ersten Fehlschlag an" in shown.text
    refused = nadia.post("/ui/rollouts", data=START | {"sites": []})
    assert "Wählen Sie die Standorte oder das ganze Netzwerk" in refused.text


def _doors(page: str) -> list[tuple[str, str]]:
    """The door table's rows in order: (site/device, step)."""
    return re.findall(r'<tr data-device="([^"]+)" data-step="([^"]+)">', page)


def test_long_lists_are_paged_and_a_big_rollout_shows_its_worst_doors_first(hub, monkeypatch):
    """Both bounds, made small: a list of one rollout a page, a rollout page of two doors."""
    monkeypatch.setattr(rollout_pages, "LISTED", 1)
    monkeypatch.setattr(rollout_pages, "DEVICES_SHOWN", 2)
    nadia = signed_in(hub, "nadia")
    first = nadia.post("/ui/rollouts", data=START | {"sites": ["leipzig-ost"]})
    assert first.status_code == 200
    started = nadia.post("/ui/rollouts", data=START, follow_redirects=False)
    where = started.headers["location"]
    number = int(where.rsplit("/", 1)[1])
    advance(hub.engine, no_send)
    canary = next(d for d, s in steps(hub.engine, number).items() if s == "ordered")
    report(hub.engine, number, canary, "failed", V, running="1.3.0", detail="disk full")
    shown = nadia.get(where).text
    assert _doors(shown)[0] == (canary, "failed") and len(_doors(shown)) == 2
    assert "and 1 more door: the API lists them all" in shown
    newest = nadia.get("/ui/rollouts").text
    assert re.findall(r'data-rollout="(\d+)"', newest) == [str(number)]
    older = re.search(r'href="(/ui/rollouts\?before=\d+)">Older rollouts', newest)
    assert older, newest
    assert re.findall(r'data-rollout="(\d+)"', nadia.get(older.group(1)).text) == [str(number - 1)]
