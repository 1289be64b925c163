"""Occupancy at the hub: samples from a door through a real mosquitto into the store and the
API; Home Assistant discovery on the same broker; time-weighted history."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from hub import db
from hub.auth import Role
from sim.broker import LocalBroker
from tests.support.edge import PIR, edge_config_dict, free_udp_port, motion, toml_text
from tests.support.hub import add_user, api_client, as_user, sign_in_as
from tests.support.network import TestHub, connected_edge
from tests.support.waiting import wait_for

OCCUPANCY = {
    "capacity": 12,
    "rooms": [{"name": "coworking", "pin": PIR}],
    "sample_seconds": 5,
    "home_assistant": {"enabled": True},
}


def retained(port: int, topic: str) -> dict[str, dict]:
    """Every retained message under ``topic`` as the broker holds it now."""
    out = subprocess.run(
        ["mosquitto_sub", "-p", str(port), "-t", topic, "-v", "-W", "1", "--retained-only"],
        capture_output=True,
        text=True,
    ).stdout
    return {line.split(" ", 1)[0]: json.loads(line.split(" ", 1)[1]) for line in out.splitlines()}


def test_samples_reach_the_hub_and_home_assistant_sees_the_space(tmp_path, mock_pins):
    with LocalBroker(tmp_path / "broker") as broker:
        hub = TestHub(tmp_path, broker).start()
        hub.add_site("leipzig-ost")
        add_user(hub.engine, Role.SITE_OPERATOR, ["leipzig-ost"])
        try:
            with connected_edge(tmp_path, hub, sections={"occupancy": OCCUPANCY}) as (agent, _):
                time.sleep(0.5)  # gpiozero's first PIR sample sets the resting level
                # Nobody came through the door, yet someone is there, the PIR says. (The agent
                # has just started: it never knew who was inside, so maybe a few.)
                motion()
                assert wait_for(lambda: _stored(hub) and _stored(hub)[-1].count >= 1, 10)
                count = agent.occupancy.last.count
                assert _stored(hub)[-1].count == count
                found = retained(broker.port, "homeassistant/#")
                kinds = {topic.split("/")[1] for topic in found}
                assert kinds == {"sensor", "binary_sensor"}
                occupancy = next(c for t, c in found.items() if t.endswith("_occupancy/config"))
                assert occupancy["state_topic"] == "hafen/v1/leipzig-ost/door-1/occupancy"
                room = next(c for t, c in found.items() if "room_coworking" in t)
                assert room["device_class"] == "occupancy"
                live = retained(broker.port, occupancy["state_topic"])
                state = live[occupancy["state_topic"]]
                assert state["count"] == count and state["rooms"] == {"coworking": True}
                assert state["door_locked"] is True
            with api_client(hub.engine) as api:
                now = api.get("/sites/leipzig-ost/occupancy", headers=as_user(api, "olga"))
                assert now.status_code == 200, now.text
                body = now.json()
                assert (body["count"], body["present"], body["stale"]) == (count, True, False)
                assert body["rooms"] == {"coworking": True}
        finally:
            hub.stop()


def _stored(hub: TestHub) -> list:
    with hub.engine.connect() as conn:
        query = select(db.occupancy_samples).order_by(db.occupancy_samples.c.at)
        return list(conn.execute(query).all())


def _sample(at: datetime, count: int, device: str = "door-1", **extra) -> dict:
    return {
        "event_id": os.urandom(16).hex(),
        "site": "leipzig-ost",
        "device": device,
        "epoch": "00000000000000aa",
        "seq": int(at.timestamp()),
        "at": at,
        "count": count,
        "capacity": 20,
        "confidence": 1.0,
        "present": count > 0,
        "rooms": {},
        "co2": {"air": 600},
        "cause": "minute",
        "received_at": at,
        **extra,
    }


@pytest.fixture
def leipzig_ost(engine):
    """The site leipzig-ost, stored directly; asked for before ``api``, it is there when the
    API starts."""
    with engine.begin() as conn:
        conn.execute(db.sites.insert(), {"id": "leipzig-ost", "timezone": "Europe/Berlin"})


def test_history_is_time_weighted_in_the_sites_own_hours(leipzig_ost, api):
    # 09:00-10:00 Berlin (08:00 UTC): 2 people for 30 minutes, then 4; at 10:00 empty.
    base = datetime(2026, 3, 11, 8, 0, tzinfo=UTC)
    rows = [_sample(base, 2), _sample(base + timedelta(minutes=30), 4)]
    rows += [_sample(base + timedelta(minutes=60 + m), 0) for m in range(0, 60, 5)]
    with api.engine.begin() as conn:
        conn.execute(db.occupancy_samples.insert(), rows)
    admin = as_user(api, "nadia")
    params = {"since": "2026-03-11T09:00:00+01:00", "until": "2026-03-11T11:00:00+01:00"}
    hours = api.get("/sites/leipzig-ost/occupancy/history", params=params, headers=admin).json()
    assert [h["start"][:16] for h in hours] == ["2026-03-11T08:00", "2026-03-11T09:00"]
    first, second = hours
    assert (first["mean"], first["peak"], first["occupied"]) == (3.0, 4, 1.0)
    # Each sample stands for at most 10 minutes (a device that went quiet is unknown, not
    # empty): 08:00-08:10 and 08:30-08:40 are known, a third of the hour.
    assert first["covered"] == pytest.approx(20 / 60, abs=0.01)
    assert (second["mean"], second["peak"], second["occupied"]) == (0.0, 0, 0.0)
    days = api.get(
        "/sites/leipzig-ost/occupancy/history",
        params={
            "since": "2026-03-28T12:00:00+01:00",
            "until": "2026-03-31T00:00:00+02:00",
            "resolution": "day",
        },
        headers=admin,
    ).json()
    # Around the spring change: local midnights, the 29th has 23 hours.
    assert [d["start"] for d in days][:3] == [
        "2026-03-27T23:00:00Z",
        "2026-03-28T23:00:00Z",
        "2026-03-29T22:00:00Z",
    ]


def test_occupancy_is_for_the_sites_own_people_only(leipzig_ost, api):
    elsewhere = sign_in_as(api, Role.SITE_OPERATOR, ["borna"], username="bert")
    assert api.get("/sites/leipzig-ost/occupancy", headers=elsewhere).status_code == 404
    assert api.get("/sites/leipzig-ost/occupancy", headers=as_user(api, "tim")).status_code == 403
    admin = as_user(api, "nadia")
    empty = api.get("/sites/leipzig-ost/occupancy", headers=admin).json()
    assert (empty["count"], empty["stale"]) == (None, True)
    far = {"since": "2020-01-01T00:00:00Z", "resolution": "minute"}
    too_many = api.get("/sites/leipzig-ost/occupancy/history", params=far, headers=admin)
    assert too_many.status_code == 422 and "coarser" in too_many.text


def test_a_simulated_space_publishes_occupancy_that_the_hub_serves(tmp_path):
    """``hafen edge run --simulate`` as its own process: simulated members tap in through
    nfcpy's UDP reader, the PIRs and the CO2 sensor on a pty; the hub's API shows them."""
    from sim.space import simulated_card

    with LocalBroker(tmp_path / "broker") as broker:
        hub = TestHub(tmp_path, broker).start()
        hub.add_device("leipzig-ost", "front-door")  # as in edge_config_dict
        for i in range(4):
            hub.add_member(f"sim-{i:02d}", simulated_card(i))
        hub.publisher.publish_sites({"leipzig-ost"})
        raw = edge_config_dict(tmp_path, reader=f"udp:127.0.0.1:{free_udp_port()}")
        raw["door"].update(unlock_seconds=1.5, held_open_seconds=20)
        raw["mqtt"] = {"host": "127.0.0.1", "port": broker.port, "reconnect_max_seconds": 1}
        raw["hub"] = {"public_keys": [hub.public_key]}
        config = tmp_path / "edge.toml"
        config.write_text(toml_text(raw), encoding="utf-8")
        hafen = Path(sys.executable).with_name("hafen")
        env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")}
        edge = subprocess.Popen(
            [
                str(hafen),
                "edge",
                "run",
                "--simulate",
                "--config",
                str(config),
                "--people",
                "4",
                "--speed",
                "900",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            assert wait_for(lambda: any(s.count >= 2 for s in _stored(hub)), 60), [
                (s.count, s.cause) for s in _stored(hub)
            ]
            with api_client(hub.engine) as api:
                admin = sign_in_as(api, Role.NETWORK_ADMIN)
                now = api.get("/sites/leipzig-ost/occupancy", headers=admin).json()
                assert now["stale"] is False and now["count"] >= 1
                assert set(now["rooms"]) == {"coworking", "meeting"}
                assert set(now["co2"]) == {"air"}
                since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
                history = api.get(
                    "/sites/leipzig-ost/occupancy/history",
                    params={"since": since, "resolution": "minute"},
                    headers=admin,
                ).json()
                assert max(b["peak"] or 0 for b in history) >= 2
        finally:
            edge.send_signal(signal.SIGINT)
            assert edge.wait(20) == 0, edge.stderr and edge.stderr.read().decode()[-2000:]
            hub.stop()
