"""The booking rules that count what is booked already: asked by ``bookings`` under the
pool's lock, in the transaction that then inserts (so that what they count cannot change
before the insert). See ``booking_rules`` for the table of every rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Connection, Row, bindparam, select

from hub import db
from hub.services.allowance import Allowance, require_day_left
from hub.services.booking_rules import PART_MINUTES, PART_WORDS, Rule, SiteRules, Window, refuse
from hub.services.desk_pool import DESK_KINDS, Part, Taken, desks_taken, holding
from hub.services.wording import N_, Joined, Words, words

_b = db.bookings.c
#: Built once (booking's hot path): the desks a member holds at a site on a day.
_HELD = select(_b.id, _b.part).where(
    _b.member_id == bindparam("member"),
    _b.site_id == bindparam("site"),
    _b.day == bindparam("day"),
    _b.kind.in_(DESK_KINDS),
    holding(),
)


@dataclass(frozen=True)
class Hold:
    """What a booking will hold: its time, its pool, its part or room."""

    window: Window
    resource: str
    part: Part | None = None
    room: Row | None = None


def require_free(
    conn: Connection,
    rules: SiteRules,
    member: str,
    hold: Hold,
    allowance: Allowance | None,
    subject: str,
    now: datetime,
) -> None:
    """The rules that count what is booked, asked under the pool's lock."""
    day = hold.window.day
    if hold.room is not None:
        _require_room_free(conn, rules, hold)
        return
    part = hold.part or Part.DAY
    _require_no_desk_held(conn, rules.id, member, day, part, subject)
    if allowance is not None:
        require_day_left(conn, allowance, member, day, subject)
    if rules.desks is None:
        return  # a site that counts no desks (a day guest): nothing to run out of
    taken = desks_taken(conn, [rules.id], day).get(rules.id, Taken())
    if taken.in_part(part) < rules.desks:
        return
    halves: list[Words] = []
    for other in (Part.MORNING, Part.AFTERNOON):
        window = rules.part_window(day, other)
        left = rules.desks - taken.in_part(other)
        if other != part and left > 0 and window is not None and window.ends_at > now:
            halves.append(
                words(N_("book the %(part)s (%(left)s left)"), part=PART_WORDS[other], left=left)
            )
    text = N_("no desk left at %(site)s on %(day)s (%(part)s); join the waiting list")
    if halves:
        text = N_(
            "no desk left at %(site)s on %(day)s (%(part)s); join the waiting list or %(halves)s"
        )
    halves_said = Joined(halves, " or ")
    raise refuse(Rule.FULL, text, site=rules.id, day=day, part=PART_WORDS[part], halves=halves_said)


def _require_no_desk_held(
    conn: Connection, site: str, member: str, day: date, part: Part, subject: str
) -> None:
    held_now = {"member": member, "site": site, "day": day}
    for held in conn.execute(_HELD, held_now):
        held_part = Part(held.part) if held.part else Part.DAY
        if Part.DAY in (held_part, part) or held_part == part:
            text = N_(
                "%(member)s already has a desk at %(site)s on %(day)s (%(part)s): booking"
                " %(booking)s; cancel it to book another part"
            )
            if subject == "you":
                text = N_(
                    "you already have a desk at %(site)s on %(day)s (%(part)s): booking"
                    " %(booking)s; cancel it to book another part"
                )
            raise refuse(
                Rule.HOLDS_DESK,
                text,
                member=subject,
                site=site,
                day=day,
                part=PART_WORDS[held_part],
                booking=held.id,
            )


def _require_room_free(conn: Connection, rules: SiteRules, hold: Hold) -> None:
    b, window = db.bookings.c, hold.window
    assert hold.room is not None
    booked = conn.execute(
        select(b.starts_at, b.ends_at)
        .where(
            b.site_id == rules.id,
            b.kind == "room",
            b.room_id == hold.room.id,
            b.day == window.day,
            holding(),
        )
        .order_by(b.starts_at)
    ).all()
    spans = [(db.aware(s), db.aware(e)) for s, e in booked]
    clash = [(s, e) for s, e in spans if s < window.ends_at and e > window.starts_at]
    if not clash:
        return
    day = window.day
    opens, closes = rules.hours(day) or PART_MINUTES[Part.DAY]
    closing = rules.at(day, closes)
    free, cursor = [], rules.at(day, opens)
    for start, end in [*spans, (closing, closing)]:  # the gaps between bookings, to closing
        if start > cursor:
            free.append(f"{_clock(rules, day, cursor)}–{_clock(rules, day, start)}")
        cursor = max(cursor, end)
    taken = ", ".join(f"{_clock(rules, day, s)}–{_clock(rules, day, e)}" for s, e in clash)
    raise refuse(
        Rule.ROOM_TAKEN,
        N_("%(room)s at %(site)s is booked %(taken)s on %(day)s; free that day: %(free)s"),
        room=hold.room.id,
        site=rules.id,
        taken=taken,
        day=window.day,
        free=", ".join(free) or Words(N_("none")),
    )


def _clock(rules: SiteRules, day: date, instant: datetime) -> str:
    """An instant of ``day`` as the site's clock shows it (its end as 24:00)."""
    local = instant.astimezone(rules.zone)
    return "24:00" if local.date() > day else f"{local:%H:%M}"
