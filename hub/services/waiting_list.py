"""The waiting list, as its members see it: a member joins it for a site's day (or a part of
it) when no desk is left, sees where they stand, and leaves it; a company admin does the same
for their staff. When a desk frees, the first one waiting whose part fits gets it
(``waiting_offers``).

Joining asks what booking would (``booking_rules``, ``allowance``, ``booking_counts``): a
day that can be booked, a site the member's allowance includes, a desk day left that month,
no desk held there already; only the desk itself may be missing: while one is free, the
answer is 409, "book it". One entry per member, site and day; at most
``MAX_WAITING_PER_MEMBER`` at once, and ``MAX_WAITING_PER_DAY`` members on one day's list.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict
from sqlalchemy import ColumnElement, Connection, Engine, Row, and_, func, insert, select
from sqlalchemy.orm import aliased

from hafen.ids import Slug
from hub import db
from hub.auth import Principal
from hub.services.allowance import allowance_of, member_terms
from hub.services.booking_counts import Hold, require_free
from hub.services.booking_rules import PART_WORDS, Rule, RuleBroken, SiteRules, blocked, desk_window
from hub.services.booking_writes import DESKS, lock_member, lock_pool, writing
from hub.services.bookings import on_staff, own_company, own_member
from hub.services.bounds import Day
from hub.services.desk_pool import Part
from hub.services.errors import Conflict, Invalid, NotFound
from hub.services.waiting_offers import MAX_WAITING_PER_DAY, Outcome, end_entry
from hub.services.wording import N_, words

#: The most entries one member waits with at once (a trust boundary: members add them).
MAX_WAITING_PER_MEMBER = 20
#: The most entries one answer lists.
MAX_LISTED = 200


class WaitingIn(BaseModel):
    """What a member waits for: a desk at ``site`` on ``day``, for a ``part`` of it."""

    model_config = ConfigDict(extra="forbid")

    site: Slug
    day: Day
    part: Part = Part.DAY


class StaffWaitingIn(WaitingIn):
    """What a company admin puts one of their staff on the waiting list for."""

    member: Slug


class Waiting(BaseModel):
    """An entry of the waiting list."""

    id: int
    site: str
    day: date
    part: Part
    member: str
    created_at: datetime
    #: waiting, or how it ended: booked (``booking``), left, expired, refused (``reason``).
    state: Literal["waiting", "booked", "left", "expired", "refused"]
    #: While waiting: 1 if next in line for a desk at that site and day.
    position: int | None = None
    booking: int | None = None
    ended_at: datetime | None = None
    reason: str | None = None


def join_own(
    engine: Engine, who: Principal, wanted: WaitingIn, now: datetime | None = None
) -> Waiting:
    """A member puts themselves on the waiting list."""
    return _join(engine, who, own_member(who), wanted, "you", None, now)


def join_for_staff(
    engine: Engine, who: Principal, wanted: StaffWaitingIn, now: datetime | None = None
) -> Waiting:
    """A company admin puts one of their staff on the waiting list; anyone else answers as a
    member that does not exist."""
    company = own_company(who)
    with engine.connect() as conn:
        if not on_staff(conn, company, wanted.member):
            raise NotFound(f"no member {wanted.member!r} on your company's staff")
    return _join(engine, who, wanted.member, wanted, wanted.member, company, now)


def _join(
    engine: Engine,
    who: Principal,
    member: str,
    wanted: WaitingIn,
    subject: str,
    company: str | None,
    now: datetime | None,
) -> Waiting:
    """Put ``member`` on the list; ``company``: the employer whose admin does it (the
    entries it may see and end), None for the member themselves."""
    now = now or datetime.now(UTC)
    site, day, part = wanted.site, wanted.day, wanted.part
    with engine.connect() as conn:
        rules = SiteRules.load(conn, site)
        hold = Hold(desk_window(rules, day, part, now), DESKS, part)
        terms = member_terms(conn, member)
        if terms is None:
            raise Invalid(f"no member {member!r}")
        if terms.blocked:
            raise blocked(member, subject)
        allowance = allowance_of(conn, member, terms, hold.window.starts_at)
        allowance.require_site(site)
    # Under the pool's lock, as a booking: a desk that frees meanwhile is either seen free
    # here, or offered to the list after this entry is on it.
    with writing(engine), engine.begin() as conn:
        if allowance.days_per_month is not None:
            lock_member(conn, member)
        lock_pool(conn, site, day, DESKS)
        _require_room_on_lists(conn, member, site, day, subject)
        try:
            require_free(conn, rules, member, hold, allowance, subject, now)
        except RuleBroken as refusal:
            if refusal.rule != Rule.FULL:
                raise
        else:
            raise Conflict(
                words(
                    N_("a desk is free at %(site)s on %(day)s (%(part)s): book it"),
                    site=site,
                    day=day,
                    part=PART_WORDS[part],
                )
            )
        entry = conn.execute(
            insert(db.waiting_list)
            .returning(*db.waiting_list.c)
            .values(
                site_id=site,
                day=day,
                member_id=member,
                part=part,
                created_at=now,
                created_by=who.user_id,
                company_id=company,
            )
        ).one()
        return _described(conn, [entry])[0]


def _require_room_on_lists(
    conn: Connection, member: str, site: str, day: date, subject: str
) -> None:
    """Refuse a second entry for the same site and day, and lists that are full."""
    w = db.waiting_list.c
    waiting = w.ended_at.is_(None)
    already = conn.scalar(
        select(w.id).where(waiting, w.member_id == member, w.site_id == site, w.day == day)
    )
    you = subject == "you"
    if already is not None:
        text = N_(
            "%(member)s is on the waiting list for %(site)s on %(day)s already (entry"
            " %(entry)s); leave it first to wait for another part of the day"
        )
        if you:
            text = N_(
                "you are on the waiting list for %(site)s on %(day)s already (entry"
                " %(entry)s); leave it first to wait for another part of the day"
            )
        raise Conflict(words(text, member=subject, site=site, day=day, entry=already))
    own = conn.scalar(select(func.count()).where(waiting, w.member_id == member)) or 0
    if own >= MAX_WAITING_PER_MEMBER:
        text = N_(
            "%(member)s is on %(lists)s waiting lists already, the most at once; leave one first"
        )
        if you:
            text = N_(
                "you are on %(lists)s waiting lists already, the most at once; leave one first"
            )
        raise Conflict(words(text, member=subject, lists=own))
    on_day = conn.scalar(select(func.count()).where(waiting, w.site_id == site, w.day == day)) or 0
    if on_day >= MAX_WAITING_PER_DAY:
        raise Conflict(
            words(
                N_(
                    "the waiting list for %(site)s on %(day)s is full (%(waiting)s waiting); try"
                    " another space or day"
                ),
                site=site,
                day=day,
                waiting=on_day,
            )
        )


def list_own(
    engine: Engine, who: Principal, now: datetime | None = None, limit: int = MAX_LISTED
) -> list[Waiting]:
    """The member's entries for days not over yet (waiting ones and how others ended),
    by day."""
    return _list(engine, db.waiting_list.c.member_id == own_member(who), now, limit)


def list_for_company(
    engine: Engine, who: Principal, now: datetime | None = None, limit: int = MAX_LISTED
) -> list[Waiting]:
    """The entries the company put its staff on, for days not over yet, by day; never those
    its staff made themselves (their own business)."""
    return _list(engine, db.waiting_list.c.company_id == own_company(who), now, limit)


def _list(
    engine: Engine, whose: ColumnElement[bool], now: datetime | None, limit: int
) -> list[Waiting]:
    w = db.waiting_list.c
    # Every zone's today is at most a day from UTC's: the site's day decides the rest.
    since = (now or datetime.now(UTC)).date() - timedelta(days=1)
    query = (
        select(db.waiting_list)
        .where(whose, w.day >= since)
        .order_by(w.day, w.id)
        .limit(min(limit, MAX_LISTED))
    )
    with engine.connect() as conn:
        return _described(conn, conn.execute(query).all())


def leave_own(
    engine: Engine, who: Principal, entry_id: int, now: datetime | None = None
) -> Waiting:
    """A member leaves a waiting list; another's entry answers as none."""
    member = own_member(who)
    return _leave(engine, entry_id, lambda row: row.member_id == member, now)


def leave_for_staff(
    engine: Engine, who: Principal, entry_id: int, now: datetime | None = None
) -> Waiting:
    """A company admin takes one of their staff off a waiting list the company put them on;
    any other entry answers as none."""
    company = own_company(who)
    return _leave(engine, entry_id, lambda row: row.company_id == company, now)


def _leave(
    engine: Engine,
    entry_id: int,
    may_see: Callable[[Row], bool],
    now: datetime | None,
) -> Waiting:
    w = db.waiting_list.c
    with engine.begin() as conn:
        row = conn.execute(select(db.waiting_list).where(w.id == entry_id)).one_or_none()
        if row is None or not may_see(row):
            raise NotFound("no such waiting-list entry")
        end_entry(conn, entry_id, Outcome.LEFT, now or datetime.now(UTC))
        row = conn.execute(select(db.waiting_list).where(w.id == entry_id)).one()
        return _described(conn, [row])[0]


def _described(conn: Connection, rows: Sequence[Row]) -> list[Waiting]:
    """Entries with each waiting one's place in its line, in one query."""
    w = db.waiting_list.c
    ahead = aliased(db.waiting_list)
    ids = [row.id for row in rows if row.ended_at is None]
    line = (
        select(w.id, func.count(ahead.c.id).label("position"))
        .join(
            ahead,
            and_(
                ahead.c.site_id == w.site_id,
                ahead.c.day == w.day,
                ahead.c.ended_at.is_(None),
                ahead.c.id <= w.id,
            ),
        )
        .where(w.id.in_(ids))
        .group_by(w.id)
    )
    positions = {row.id: int(row.position) for row in conn.execute(line)}
    return [
        Waiting(
            id=row.id,
            site=row.site_id,
            day=row.day,
            part=Part(row.part),
            member=row.member_id,
            created_at=db.aware(row.created_at),
            state=(row.outcome or Outcome.LEFT) if row.ended_at is not None else "waiting",
            position=positions.get(row.id),
            booking=row.booking_id,
            ended_at=db.aware(row.ended_at),
            reason=row.reason,
        )
        for row in rows
    ]
