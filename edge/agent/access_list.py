"""Applying an access list to the local store: all of it in one transaction, or nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from edge.agent.store import EdgeStore
from hafen.acl import AccessList, Grant, epoch_micros
from hafen.cards import InvalidUid, card_hash, parse_uid


class AccessListRefused(Exception):
    """An access list was not applied; the message says why and the store is unchanged."""


def applied_version(store: EdgeStore) -> int:
    """The version of the access list in force, 0 when none was ever applied."""
    row = store.conn.execute("SELECT value FROM acl_meta WHERE key = 'version'").fetchone()
    return int(row[0]) if row else 0


def apply_snapshot(store: EdgeStore, acl: AccessList, site: str, tz: ZoneInfo, key: bytes) -> int:
    """Replace the whole access list with ``acl``; returns the number of cards now known."""
    if acl.site != site:
        raise AccessListRefused(f"the list is for site {acl.site!r}, this device is at {site!r}")
    try:
        cards = [_card_row(c.hash, c.uid, c.member, c.revoked, key) for c in acl.cards]
    except InvalidUid as exc:
        raise AccessListRefused(f"a card's uid is invalid: {exc}") from None
    if len({row[0] for row in cards}) != len(cards):
        raise AccessListRefused("the same card appears more than once")
    with store.write() as conn:
        current = applied_version(store)
        if acl.version <= current:
            raise AccessListRefused(
                f"version {acl.version} is not newer than the applied version {current}"
            )
        for table in ("cards", "grants", "members", "plans"):
            conn.execute(f"DELETE FROM {table}")
        db = store.db
        db["plans"].insert_all(
            {"id": p.id, "sites": _json(p.sites), "windows": _windows(p)} for p in acl.plans
        )
        db["members"].insert_all({"id": m.id, "blocked": int(m.blocked)} for m in acl.members)
        db["grants"].insert_all(
            _grant_row(member.id, grant, tz) for member in acl.members for grant in member.grants
        )
        conn.executemany("INSERT INTO cards (hash, member_id, revoked) VALUES (?, ?, ?)", cards)
        meta = {"version": str(acl.version), "site": acl.site, "applied_at": _now()}
        conn.executemany("INSERT OR REPLACE INTO acl_meta VALUES (?, ?)", meta.items())
    return len(cards)


def _card_row(
    hash_: str | None, uid: str | None, member: str, revoked: bool, key: bytes
) -> tuple[str, str, int]:
    digest = hash_ if hash_ is not None else card_hash(key, parse_uid(uid or ""))
    return digest, member, int(revoked)


def _grant_row(member: str, grant: Grant, tz: ZoneInfo) -> dict:
    valid_from, valid_until = grant.bounds(tz)
    return {
        "member_id": member,
        "plan_id": grant.plan,
        "sites": _json(grant.sites),
        "valid_from_us": _micros(valid_from),
        "valid_until_us": _micros(valid_until),
    }


def _windows(plan) -> str | None:
    if plan.windows is None:
        return None
    return json.dumps([w.model_dump(mode="json") for w in plan.windows])


def _json(value: list | None) -> str | None:
    return None if value is None else json.dumps(value)


def _micros(value: datetime | None) -> int | None:
    return None if value is None else epoch_micros(value)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
