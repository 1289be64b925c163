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


def sample(site: str, at: datetime, count: int, device: str = "door-1", **fields: object) -> dict:
    """A sample of ``count`` people (capacity 20); ``fields`` add to or replace its data, as
    ``low=10, high=14`` (its 90 % interval); None leaves a field out, as a door does."""
    data: dict[str, object] = {"count": count, "capacity": 20, "confidence": 1.0}
    data |= {"present": count > 0, "rooms": {}, "co2": {}, **fields}
    return event(
        site, "occupancy.sample", at, {k: v for k, v in data.items() if v is not None}, device
    )


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
