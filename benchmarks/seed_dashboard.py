"""Seeding a network-sized hub store for the dashboard benchmark (bulk, straight to the driver)."""

from __future__ import annotations

import json
import math
import random
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import insert

from hub import db
from hub.auth import Role, create_user

BERLIN = ZoneInfo("Europe/Berlin")
CAPACITY = 20
PASSWORD = "a long passphrase"


def seed_directory(engine, sites: list[str], members: int, names: list[str]) -> None:
    """Sites with two doors each (online, current lists), companies, members and two users."""
    now = datetime.now(UTC)
    rng = random.Random(3)
    doors = [
        {"site": s, "id": f"door-{d}", "kind": "door", "created_at": now}
        for s in sites
        for d in (1, 2)
    ]
    with engine.begin() as conn:
        conn.execute(
            insert(db.sites),
            [
                {
                    "id": s,
                    "name": f"Hafen {s[5:]}",
                    "timezone": "Europe/Berlin",
                    "capacity": CAPACITY,
                }
                for s in sites
            ],
        )
        conn.execute(insert(db.devices), doors)
        conn.execute(
            insert(db.device_states),
            [
                {
                    "site": d["site"],
                    "device": d["id"],
                    "online": True,
                    "session": 1,
                    "software": "0.6.0",
                    "acl_version": 7,
                    "received_at": now,
                }
                for d in doors
            ],
        )
        conn.execute(
            insert(db.acl_versions),
            [
                {
                    "site": s,
                    "version": 7,
                    "kind": "snapshot",
                    "body": b"",
                    "message_bytes": 0,
                    "published_at": now,
                }
                for s in sites
            ],
        )
        conn.execute(
            insert(db.companies),
            [{"id": f"co-{i:03d}", "name": f"Company {i}"} for i in range(100)],
        )
        conn.execute(
            insert(db.members),
            [
                {
                    "id": f"m{i:05d}",
                    "blocked": False,
                    "name": f"{rng.choice(names)} {i}",
                    "company_id": f"co-{i % 100:03d}" if i % 5 == 0 else None,
                }
                for i in range(members)
            ],
        )
    create_user(engine, "nadia", PASSWORD, Role.NETWORK_ADMIN)
    create_user(engine, "olga", PASSWORD, Role.SITE_OPERATOR, sites[:3])


def seed_events(engine, sites: list[str], members: int, events: int, days: int) -> None:
    """Door decisions, as many per site and day: members mostly at their home site (one in ten
    roams its district of ten sites), between 07:00 and 21:00 local; 2 % denied cards."""
    rng = random.Random(7)
    per_site_day = max(events // (len(sites) * days), 1)
    home = {s: [f"m{i:05d}" for i in range(k, members, len(sites))] for k, s in enumerate(sites)}
    postgres = engine.dialect.name == "postgresql"
    columns = "event_id, site, device, epoch, seq, kind, at, data, received_at, member"
    sql = f"INSERT INTO events ({columns}) VALUES ({', '.join(['%s' if postgres else '?'] * 10)})"
    today = datetime.now(BERLIN).replace(hour=0, minute=0, second=0, microsecond=0)
    seq, batch = 0, []
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        for day in range(days, 0, -1):
            midnight = today - timedelta(days=day)
            for k, site in enumerate(sites):
                district = sites[k // 10 * 10 : k // 10 * 10 + 10]
                regulars = rng.sample(home[site], k=min(60, len(home[site])))
                for _ in range(per_site_day):
                    seq += 1
                    at = (midnight + timedelta(seconds=rng.uniform(7, 21) * 3600)).astimezone(UTC)
                    if rng.random() < 0.02:
                        member, data = (
                            None,
                            {"card": uuid.uuid4().hex, "allowed": False, "reason": "unknown_card"},
                        )
                    else:
                        member = (
                            rng.choice(regulars)
                            if rng.random() < 0.9
                            else rng.choice(home[rng.choice(district)])
                        )
                        data = {"card": uuid.uuid4().hex, "allowed": True, "member": member}
                    stamp = at if postgres else at.strftime("%Y-%m-%d %H:%M:%S.%f")
                    batch.append(
                        (
                            uuid.uuid4().hex,
                            site,
                            "door-1",
                            "00000000000000aa",
                            seq,
                            "door.decision",
                            stamp,
                            json.dumps(data),
                            stamp,
                            member,
                        )
                    )
                if len(batch) >= 50_000:
                    cursor.executemany(sql, batch)
                    raw.commit()
                    batch.clear()
        if batch:
            cursor.executemany(sql, batch)
            raw.commit()
    finally:
        raw.close()


def _usual(local: datetime) -> float:
    """A working day's headcount curve: busy 9-17 on weekdays, quiet at weekends."""
    hour = local.hour + 0.5
    curve = max(math.sin(math.pi * (hour - 7) / 12), 0) if 7 <= hour <= 19 else 0.0
    return CAPACITY * 0.6 * curve * (0.3 if local.weekday() >= 5 else 1.0)


def seed_occupancy(engine, sites: list[str], days: int) -> None:
    """Hourly roll-ups for ``days`` days and today's samples minute by minute, per site."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    first = now.replace(minute=0) - timedelta(days=days)
    hours = [first + timedelta(hours=h) for h in range(days * 24)]
    rng = random.Random(11)
    with engine.begin() as conn:
        rows = []
        for site in sites:
            for hour in hours:
                mean = _usual(hour.astimezone(BERLIN)) * rng.uniform(0.7, 1.3)
                rows.append(
                    {
                        "site": site,
                        "device": "door-1",
                        "hour": hour,
                        "person_seconds": mean * 3600,
                        "occupied_seconds": 3600.0 if mean >= 0.5 else 0.0,
                        "known_seconds": 3600.0,
                        "peak": math.ceil(mean * 1.3),
                    }
                )
            if len(rows) >= 50_000:
                conn.execute(insert(db.occupancy_hours), rows)
                rows.clear()
        if rows:
            conn.execute(insert(db.occupancy_hours), rows)
    midnight = now.astimezone(BERLIN).replace(hour=0, minute=0).astimezone(UTC)
    minutes = int((now - midnight).total_seconds() // 60)
    with engine.begin() as conn:
        rows, newest = [], []
        for k, site in enumerate(sites):
            for m in range(minutes + 1):
                at = midnight + timedelta(minutes=m)
                count = round(_usual(at.astimezone(BERLIN)) * rng.uniform(0.8, 1.2))
                row = {
                    "event_id": uuid.uuid4().hex,
                    "site": site,
                    "device": "door-1",
                    "epoch": "00000000000000aa",
                    "seq": 10_000_000 + m,
                    "at": at,
                    "count": count,
                    "capacity": CAPACITY,
                    "confidence": 1.0,
                    "present": count > 0,
                    "rooms": {},
                    "co2": {"main": 450 + 60 * count},
                    "cause": "minute",
                    "received_at": at,
                }
                rows.append(row)
            newest.append(
                {
                    c: row[c]
                    for c in (
                        "site",
                        "device",
                        "at",
                        "count",
                        "capacity",
                        "confidence",
                        "present",
                        "rooms",
                        "co2",
                    )
                }
            )
            if len(rows) >= 50_000 or k == len(sites) - 1:
                conn.execute(insert(db.occupancy_samples), rows)
                rows.clear()
        conn.execute(insert(db.occupancy_now), newest)
