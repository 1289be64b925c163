"""``hafen demo``: one command runs a whole simulated network. Checked from outside, as a user
would: through its output, the hub's real HTTP API, and how it stops on Ctrl-C."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from sim.broker import free_port
from tests.support.hub import as_user
from tests.support.processes import ProcessOutput
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow

SITES = ("site-1", "site-2")


def doors_online(api: httpx.Client, auth: dict) -> dict[str, int]:
    return {s["site"]: s["online"] for s in api.get("/overview", headers=auth).json()}


def entries(api: httpx.Client, auth: dict, site: str) -> list[dict]:
    """The allowed card taps the hub stored for ``site``."""
    params = {"site": site, "kind": "door.decision"}
    events = api.get("/events", params=params, headers=auth).json()
    return [e for e in events if e["data"]["allowed"]]


def start_demo(sites: int, port: int) -> tuple[subprocess.Popen, ProcessOutput]:
    """``hafen demo`` in its own process group, once it says how to sign in."""
    hafen = Path(sys.executable).with_name("hafen")
    args = ["demo", "--sites", str(sites), "--people", "4", "--speed", "600", "--port", str(port)]
    demo = subprocess.Popen(
        [str(hafen), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: what it leaves behind is findable
    )
    output = ProcessOutput(demo)
    ready = wait_for(lambda: output.find(r"sign in as operator") or demo.poll() is not None, 60)
    assert ready and demo.poll() is None, output
    return demo, output


def test_the_demo_network_runs_and_stops_cleanly():
    port = free_port()
    demo, output = start_demo(len(SITES), port)
    try:
        url = output.find(r"dashboard:\s+(http://\S+)/ui/")
        admin = output.find(r"sign in as (\S+) with password (\S+) \(network admin\)")
        operator = output.find(r"sign in as (operator) with password (\S+) \(site operator")
        state = output.find(r"state: (\S+) \(removed")
        assert url and admin and operator and state, output
        assert url[1] == f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=url[1], timeout=10) as api:
            auth = as_user(api, admin[1], admin[2])
            assert wait_for(lambda: doors_online(api, auth) == dict.fromkeys(SITES, 1), 30), (
                api.get("/overview", headers=auth).text
            )
            # Members' taps, decided at each door, reached the hub through mosquitto.
            for site in SITES:
                assert wait_for(lambda site=site: entries(api, auth, site), 40, 0.5), output
            seen = entries(api, auth, "site-1")[0]
            assert seen["device"] == "front-door" and seen["data"]["member"].startswith("sim-")
            # The site operator sees their own site only.
            mine = as_user(api, operator[1], operator[2])
            assert list(doors_online(api, mine)) == ["site-1"]
            assert api.get("/docs").status_code == 200
            # The member who books and the employer sign in with what the banner printed.
            member = output.find(r"sign in as (\S+) with password (\S+) \(member (\S+), who")
            employer = output.find(r"sign in as (employer) with password (\S+) \(company admin")
            assert member and employer, output
            own = api.get("/me/bookings", headers=as_user(api, member[1], member[2])).json()
            assert own and {b["member"] for b in own} == {member[3]}, own
            staff = api.get("/company/staff", headers=as_user(api, employer[1], employer[2]))
            assert staff.status_code == 200 and staff.json(), staff.text
            # The dashboard at the printed address, its live feed open while the demo stops.
            signed_in = api.post("/ui/sign-in", data={"username": admin[1], "password": admin[2]})
            assert signed_in.status_code == 303, signed_in.text
            assert api.get("/ui/").status_code == 200
            with api.stream("GET", "/ui/live") as live:
                assert any(line.startswith("event: sites") for line in live.iter_lines())
                os.kill(demo.pid, signal.SIGINT)
                assert demo.wait(20) == 0, output
        assert not any("Traceback" in line for line in output.lines), output
        assert wait_for(lambda: _group_gone(demo.pid), 5), "the demo left processes behind"
        assert not Path(state[1]).exists(), "the temporary state directory is left behind"
    finally:
        if demo.poll() is None or not _group_gone(demo.pid):
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait(5)


def test_a_killed_demo_leaves_no_broker_or_site_behind():
    demo, output = start_demo(1, free_port())
    state = output.find(r"state: (\S+) \(removed")
    try:
        assert state, output
        broker = [pid for pid, line in _running(state[1]) if "mosquitto" in line]
        assert broker, "the demo's own broker runs (in a session of its own)"
        os.kill(demo.pid, signal.SIGKILL)
        demo.wait(5)
        assert wait_for(lambda: not _running(state[1]), 15), _running(state[1])
    finally:
        for pid, _ in _running(state[1]) if state else []:
            os.kill(pid, signal.SIGKILL)
        if state:
            shutil.rmtree(state[1], ignore_errors=True)  # a killed demo cannot remove it


def _running(state_dir: str) -> list[tuple[int, str]]:
    """The processes whose command line names the demo's state directory: its broker (by its
    config file) and its sites (by their spec files)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            line = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if state_dir in line:
            found.append((int(cmdline.parent.name), line))
    return found


def _group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False
