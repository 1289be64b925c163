"""Door events as ingest stores them: card taps and occupancy samples, each with a fresh id
and the next sequence number."""

from __future__ import annotations

import os
from datetime import UTC, datetime

_seq = iter(range(1, 10**9))


def tap(site: str, member: str | None, at: datetime, allowed: bool = True) -> dict:
    data = {"card": "c" * 32, "allowed": allowed}
    if member:
        data["member"] = member
    if not allowed:
        data["reason"] = "unknown_card"
    return event(site, "door.decision", at, data)


def sample(site: str, at: datetime, count: int, device: str = "door-1") -> dict:
    data = {"count": count, "capacity": 20, "confidence": 1.0, "present": count > 0}
    return event(site, "occupancy.sample", at, data | {"rooms": {}, "co2": {}}, device)


def event(site: str, kind: str, at: datetime, data: dict, device: str = "door-1") -> dict:
    return {
        "event_id": os.urandom(16).hex(),
        "site": site,
        "device": device,
        "epoch": "00000000000000aa",
        "seq": next(_seq),
        "kind": kind,
        "at": at,
        "data": data,
        "received_at": datetime.now(UTC),
    }
