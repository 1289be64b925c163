"""An optional mirror of what the hub stores into InfluxDB 2, for operators who run Grafana.

Occupancy samples become ``occupancy`` points (count, the 90 % interval's low and high when
the door sends one, confidence, present, one field per room and CO2 sensor); door events become
``door`` points counting events by kind and outcome. No member or card appears: the mirror
holds counts, never who. The hub's own store stays the record: points are written in the
background by influxdb-client's batching writer with retries, and a mirror that is down never
holds up ingest.
"""

from __future__ import annotations

import logging
from datetime import datetime

from influxdb_client import InfluxDBClient, Point, WritePrecision
from influxdb_client.client.write_api import WriteOptions

from hafen.protocol import EventKind

log = logging.getLogger(__name__)


def points(events: list[dict]) -> list[Point]:
    """The points for a batch of stored events (as the ingest worker holds them)."""
    out = []
    for event in events:
        kind, data = event["kind"], event["data"]
        at: datetime = event["at"]
        if kind == EventKind.OCCUPANCY:
            point = (
                Point("occupancy")
                .tag("site", event["site"])
                .tag("device", event["device"])
                .field("count", int(data["count"]))
                .field("confidence", float(data["confidence"]))
                .field("present", bool(data["present"]))
            )
            if data.get("low") is not None:  # doors before the interval send neither bound
                point.field("low", int(data["low"])).field("high", int(data["high"]))
            for room, occupied in data.get("rooms", {}).items():
                point.field(f"room_{room}", bool(occupied))
            for sensor, ppm in data.get("co2", {}).items():
                if ppm is not None:  # a failed reading is left out, never written as zero
                    point.field(f"co2_{sensor}", int(ppm))
        else:
            point = (
                Point("door")
                .tag("site", event["site"])
                .tag("device", event["device"])
                .tag("kind", kind)
                .tag("outcome", _outcome(kind, data))
                .field("events", 1)
            )
        out.append(point.time(at, WritePrecision.MS))
    return out


def _outcome(kind: str, data: dict) -> str:
    if kind == EventKind.ACCESS_DECISION:
        return "allowed" if data.get("allowed") else str(data.get("reason") or "denied")
    if kind == EventKind.DOOR_ALARM:
        return f"{data.get('alarm')}_{data.get('state')}"
    if kind == EventKind.SELFTEST:
        return "passed" if data.get("passed") else "failed"
    return "-"


class InfluxSink:
    """Writes stored events to an InfluxDB 2 bucket in the background."""

    def __init__(
        self,
        url: str,
        token: str,
        org: str,
        bucket: str,
        flush_seconds: float = 1.0,
        max_retry_seconds: float = 15.0,
    ) -> None:
        self.bucket, self.org = bucket, org
        self._client = InfluxDBClient(url=url, token=token, org=org)
        self._write = self._client.write_api(
            write_options=WriteOptions(
                batch_size=5000,
                flush_interval=int(flush_seconds * 1000),
                retry_interval=1_000,
                max_retries=5,
                max_retry_delay=5_000,
                # Bounded, so that stopping the worker never waits long on a mirror that is down.
                max_retry_time=int(max_retry_seconds * 1000),
            ),
            error_callback=self._failed,
        )

    def __call__(self, events: list[dict]) -> None:
        """Queue a stored batch's points; returns at once."""
        if events:
            self._write.write(bucket=self.bucket, org=self.org, record=points(events))

    def _failed(self, _conf: tuple, _data: str, exc: Exception) -> None:
        log.warning("InfluxDB did not take a batch of points after retries: %s", exc)

    def close(self) -> None:
        """Write what is queued, then disconnect."""
        self._write.close()
        self._client.close()
