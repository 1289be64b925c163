"""The InfluxDB mirror, against Debian's victoria-metrics (it takes InfluxDB 2's line protocol
on /api/v2/write, as Debian ships no InfluxDB 2): points written by influxdb-client, read back."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from hub.ingest.influx import InfluxSink
from tests.support.waiting import wait_for

pytestmark = pytest.mark.skipif(
    shutil.which("victoria-metrics") is None, reason="make setup installs victoria-metrics"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def victoria(tmp_path):
    port = _free_port()
    proc = subprocess.Popen(
        [
            "victoria-metrics",
            f"-storageDataPath={tmp_path / 'vm'}",
            f"-httpListenAddr=127.0.0.1:{port}",
            "-search.latencyOffset=0s",
            "-retentionPeriod=100y",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        assert wait_for(lambda: _healthy(url), 15)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _series(url: str, match: str) -> dict[str, dict]:
    """Every series matching ``match`` as {metric name + sorted labels: {timestamp: value}}."""
    httpx.get(f"{url}/internal/force_flush", timeout=5)
    lines = httpx.get(f"{url}/api/v1/export", params={"match[]": match}, timeout=5).text
    out = {}
    for line in filter(None, lines.splitlines()):
        row = json.loads(line)
        labels = {k: v for k, v in row["metric"].items() if k not in ("db",)}
        key = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        out[key] = dict(zip(row["timestamps"], row["values"], strict=True))
    return out


def _event(kind: str, at: datetime, data: dict, device: str = "door-1") -> dict:
    return {
        "event_id": os.urandom(16).hex(),
        "site": "leipzig-ost",
        "device": device,
        "epoch": "00000000000000aa",
        "seq": 1,
        "kind": kind,
        "at": at,
        "data": data,
        "received_at": at,
    }


def test_samples_and_door_events_arrive_as_points_without_names(victoria):
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    ms = int(at.timestamp() * 1000)
    sample = {
        "count": 7,
        "low": 5,
        "high": 9,
        "capacity": 20,
        "confidence": 0.8,
        "present": True,
        "rooms": {"coworking": True},
        "co2": {"air": 912, "hall": None},
    }
    sink = InfluxSink(victoria, "any-token", "hafen", "hafen", flush_seconds=0.2)
    old_door = {k: v for k, v in sample.items() if k not in ("low", "high")}
    sink(
        [
            _event("occupancy.sample", at, sample),
            _event("occupancy.sample", at, old_door, device="door-2"),
            _event("door.decision", at, {"card": "ab" * 16, "allowed": True, "member": "anna"}),
            _event(
                "door.decision",
                at + timedelta(seconds=1),
                {"card": "cd" * 16, "allowed": False, "reason": "revoked", "member": "ben"},
            ),
        ]
    )
    sink.close()  # writes what is queued
    occupancy = _series(victoria, '{__name__=~"occupancy_.*"}')
    where = "device=door-1,site=leipzig-ost"
    assert occupancy[f"__name__=occupancy_count,{where}"] == {ms: 7}
    assert occupancy[f"__name__=occupancy_co2_air,{where}"] == {ms: 912}
    assert occupancy[f"__name__=occupancy_present,{where}"] == {ms: 1}
    assert f"__name__=occupancy_co2_hall,{where}" not in occupancy  # missing, not zero
    assert occupancy[f"__name__=occupancy_low,{where}"] == {ms: 5}
    assert occupancy[f"__name__=occupancy_high,{where}"] == {ms: 9}
    old = "device=door-2,site=leipzig-ost"  # a door from before the interval: no bounds
    assert occupancy[f"__name__=occupancy_count,{old}"] == {ms: 7}
    assert not [key for key in occupancy if old in key and ("_low," in key or "_high," in key)]
    door = _series(victoria, '{__name__="door_events"}')
    outcomes = {key.split("outcome=")[1].split(",")[0] for key in door}
    assert outcomes == {"allowed", "revoked"}
    assert "anna" not in json.dumps(door) and "ab" * 16 not in json.dumps(door)


def test_a_mirror_that_is_down_never_holds_up_the_caller(tmp_path):
    sink = InfluxSink(
        f"http://127.0.0.1:{_free_port()}", "t", "hafen", "hafen", max_retry_seconds=2
    )
    started = time.monotonic()
    sink([_event("door.exit", datetime.now(UTC), {"source": "button"})])
    assert time.monotonic() - started < 0.5
    sink.close()  # gives up after its bounded retries
    assert time.monotonic() - started < 10


def test_the_ingest_worker_mirrors_what_it_stored(tmp_path, victoria, mock_pins):
    from sim.broker import LocalBroker
    from tests.support.network import TestHub, connected_edge

    anna = bytes.fromhex("04A1B2C3D4E5F6")
    sink = InfluxSink(victoria, "t", "hafen", "hafen", flush_seconds=0.2)
    with LocalBroker(tmp_path / "broker") as broker:
        hub = TestHub(tmp_path, broker, mirror=sink).start()
        hub.add_site("leipzig-ost")
        hub.add_member("anna", anna)
        hub.publisher.publish_site("leipzig-ost")
        try:
            with connected_edge(tmp_path, hub) as (agent, card):
                assert wait_for(lambda: agent.acl_updater.version == 1, 10)
                card.present(anna)
                assert wait_for(lambda: len(hub.events()) == 1, 10)
        finally:
            hub.stop()
            sink.close()
    door = _series(victoria, '{__name__="door_events"}')
    assert [key for key in door if "outcome=allowed" in key and "site=leipzig-ost" in key]


def test_the_shipped_grafana_dashboard_reads_what_the_sink_writes():
    from pathlib import Path

    from hub.ingest.influx import points

    path = Path(__file__).parents[1] / "provisioning/grafana/hafen-dashboard.json"
    dashboard = json.loads(path.read_text())
    queries = " ".join(t["query"] for p in dashboard["panels"] for t in p["targets"])
    at = datetime.now(UTC)
    sample = {"count": 1, "confidence": 1.0, "present": True, "co2": {"air": 500}}
    written = points([_event("occupancy.sample", at, sample), _event("door.exit", at, {})])
    lines = " ".join(p.to_line_protocol() for p in written)
    for measurement, field in (
        ("occupancy", "count"),
        ("occupancy", "confidence"),
        ("door", "events"),
    ):
        assert f'r._measurement == "{measurement}"' in queries
        assert f"{measurement}," in lines and f"{field}=" in lines
    assert "co2_air=500i" in lines and "r._field =~ /^co2_/" in queries
