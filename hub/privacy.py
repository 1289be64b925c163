"""GDPR at the hub: access logs kept only as long as needed, members' data exported or erased.

Door events older than the retention period lose their card hash and have the member id
replaced by a keyed pseudonym: visits, unique members and members who used several sites can
still be counted, but no event names anyone. Erasure does the same at once for one member and
deletes everything else about them.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, Table, delete, insert, select, update

from hub import db

PSEUDONYM_PREFIX = "p-"
BATCH = 5000


def pseudonym_key(conn: Connection) -> bytes:
    """The hub's secret for pseudonyms, made on first use (a member id alone is guessable)."""
    value = conn.scalar(select(db.settings.c.value).where(db.settings.c.key == "pseudonym_key"))
    if value is None:
        value = os.urandom(32).hex()
        conn.execute(insert(db.settings).values(key="pseudonym_key", value=value))
    return bytes.fromhex(value)


def pseudonym(key: bytes, member: str) -> str:
    return PSEUDONYM_PREFIX + hmac.new(key, member.encode(), hashlib.sha256).hexdigest()[:16]


def _scrub(data: dict, key: bytes) -> dict:
    scrubbed = {k: v for k, v in data.items() if k != "card"}
    member = data.get("member")
    if member and not str(member).startswith(PSEUDONYM_PREFIX):
        scrubbed["member"] = pseudonym(key, member)
    return scrubbed


def _personal(data: dict) -> bool:
    member = data.get("member")
    return "card" in data or bool(member and not str(member).startswith(PSEUDONYM_PREFIX))


def _pseudonymize_rollup(
    conn: Connection, key: bytes, table: Table, members: set[str], *where: ColumnElement
) -> None:
    """Give these members' rows of a visit roll-up (those matching ``where``) their pseudonyms."""
    for member in members:
        if not member.startswith(PSEUDONYM_PREFIX):
            conn.execute(
                update(table)
                .where(table.c.member == member, *where)
                .values(member=pseudonym(key, member))
            )


def pseudonymize_rollups(engine: Engine, older_than: datetime) -> None:
    """Pseudonymise visits of days, and monthly rows of months, wholly before ``older_than``."""
    day, month = older_than.strftime("%Y-%m-%d"), older_than.strftime("%Y-%m")
    with engine.begin() as conn:
        key = pseudonym_key(conn)
        for table, old in (
            (db.visits, db.visits.c.day < day),
            (db.member_months, db.member_months.c.month < month),
        ):
            members = set(conn.scalars(select(table.c.member).where(old).distinct()))
            _pseudonymize_rollup(conn, key, table, members, old)


def pseudonymize_events(engine: Engine, older_than: datetime) -> int:
    """Scrub every event that happened before ``older_than``, and the visit roll-ups of
    those days; returns how many events changed."""
    pseudonymize_rollups(engine, older_than)
    changed, after_id = 0, 0
    while True:
        with engine.begin() as conn:
            key = pseudonym_key(conn)
            rows = conn.execute(
                select(db.events.c.id, db.events.c.data)
                .where(db.events.c.at < older_than, db.events.c.id > after_id)
                .order_by(db.events.c.id)
                .limit(BATCH)
            ).all()
            if not rows:
                return changed
            after_id = rows[-1].id
            for row in rows:
                if _personal(row.data):
                    scrubbed = _scrub(row.data, key)
                    conn.execute(
                        update(db.events)
                        .where(db.events.c.id == row.id)
                        .values(data=scrubbed, member=scrubbed.get("member"))
                    )
                    changed += 1


def export_member(engine: Engine, member: str) -> dict | None:
    """Everything the hub holds about a member, as JSON-ready data (None if unknown)."""
    with engine.connect() as conn:
        profile = conn.execute(select(db.members).where(db.members.c.id == member)).one_or_none()
        if profile is None:
            return None

        def rows(table: Table, column: ColumnElement[Any]) -> list[dict[str, Any]]:
            found = conn.execute(select(table).where(column == member)).all()
            return [row._asdict() for row in found]

        events = conn.execute(select(db.events).where(db.events.c.member == member)).all()
        return {
            "exported_at": datetime.now(UTC).isoformat(),
            "member": profile._asdict(),
            "cards": rows(db.cards, db.cards.c.member_id),
            "grants": rows(db.grants, db.grants.c.member_id),
            "bookings": rows(db.bookings, db.bookings.c.member_id),
            "allowance": rows(db.allowances, db.allowances.c.member_id),
            "waiting_list": rows(db.waiting_list, db.waiting_list.c.member_id),
            "account": [
                {"username": a.username, "role": a.role, "created_at": a.created_at}
                for a in conn.execute(select(db.users).where(db.users.c.member_id == member))
            ],
            "door_events": [e._asdict() for e in events],
        }


def erase_member(engine: Engine, member: str) -> bool:
    """Erase a member: their events pseudonymised, everything else about them deleted."""
    with engine.begin() as conn:
        if conn.scalar(select(db.members.c.id).where(db.members.c.id == member)) is None:
            return False
        key = pseudonym_key(conn)
        events = conn.execute(
            select(db.events.c.id, db.events.c.data).where(db.events.c.member == member)
        ).all()
        for row in events:
            scrubbed = _scrub(row.data, key)
            conn.execute(
                update(db.events)
                .where(db.events.c.id == row.id)
                .values(data=scrubbed, member=scrubbed.get("member"))
            )
        for table in (db.visits, db.member_months):
            _pseudonymize_rollup(conn, key, table, {member})
        _erase_account(conn, member)
        # Mail to them still queued or kept (a confirmation, a release, an invitation) holds
        # their address, name and bookings: it goes, unsent.
        email = conn.scalar(select(db.members.c.email).where(db.members.c.id == member))
        if email:
            conn.execute(delete(db.mail_outbox).where(db.mail_outbox.c.recipient == email))
        for table, column in (
            (db.cards, db.cards.c.member_id),
            (db.grants, db.grants.c.member_id),
            (db.bookings, db.bookings.c.member_id),
            (db.allowances, db.allowances.c.member_id),
            (db.calendar_feeds, db.calendar_feeds.c.member_id),
            (db.waiting_list, db.waiting_list.c.member_id),
            (db.members, db.members.c.id),
        ):
            conn.execute(delete(table).where(column == member))
    return True


def _erase_account(conn: Connection, member: str) -> None:
    """The member's own sign-in goes with them (its sessions and links too: SQLite does not
    cascade); a company admin who was also the member keeps their account, as no member."""
    u = db.users.c
    account = conn.execute(select(u.id, u.role).where(u.member_id == member)).one_or_none()
    if account is None:
        return
    if account.role != "member":
        conn.execute(update(db.users).where(u.id == account.id).values(member_id=None))
        return
    conn.execute(delete(db.api_tokens).where(db.api_tokens.c.user_id == account.id))
    conn.execute(delete(db.invitations).where(db.invitations.c.user_id == account.id))
    conn.execute(delete(db.users).where(u.id == account.id))
