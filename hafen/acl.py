"""The access-list document: who may enter a site, when. Compiled by the hub, applied by edges.

Cards appear only as keyed hashes (see hafen.cards). A hand-written list for ``hafen edge
load-acl`` may give ``uid`` instead; the edge hashes it on load and never stores it.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from enum import IntEnum
from typing import Annotated, Self, TypeVar
from zoneinfo import ZoneInfo

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from hafen.cards import CARD_HASH_BYTES

Id = Annotated[str, Field(min_length=1, max_length=64)]
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")


class Weekday(IntEnum):
    """Days as Python's ``date.weekday()`` numbers them."""

    mon = 0
    tue = 1
    wed = 2
    thu = 3
    fri = 4
    sat = 5
    sun = 6


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _minutes(text: str) -> int:
    if not _CLOCK.match(text):
        raise ValueError(f"{text!r} is not a time of day written HH:MM (00:00 to 24:00)")
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


class TimeWindow(_Doc):
    """Weekly opening in the site's local time; an ``end`` before ``start`` runs past midnight."""

    days: list[Annotated[Weekday, Field()]] = Field(min_length=1)
    start: str
    end: str

    @field_validator("days", mode="before")
    @classmethod
    def _day_names(cls, value: object) -> object:
        if isinstance(value, list):
            return [
                Weekday[v] if isinstance(v, str) and v in Weekday.__members__ else v for v in value
            ]
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if _minutes(self.start) == _minutes(self.end):
            raise ValueError("start and end are equal: the window would be empty")
        if self.start == "24:00":
            raise ValueError("a window cannot start at 24:00")
        return self

    def contains(self, weekday: int, second_of_day: float) -> bool:
        """Whether a local wall-clock moment (weekday, seconds since midnight) lies inside."""
        start, end = _minutes(self.start) * 60, _minutes(self.end) * 60
        if start < end:
            return weekday in self.days and start <= second_of_day < end
        # Past midnight: the evening part belongs to the listed day, the morning to the next.
        return (weekday in self.days and second_of_day >= start) or (
            (weekday - 1) % 7 in self.days and second_of_day < end
        )


class Plan(_Doc):
    """What a membership allows: at which sites (None: the whole network), when (None: always)."""

    id: Id
    sites: list[Id] | None = None
    windows: list[TimeWindow] | None = None


_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _date_or_instant(value: object) -> object:
    """Read "2026-12-31" as a calendar date and anything longer as an instant."""
    if isinstance(value, str) and _DATE_ONLY.match(value):
        return date.fromisoformat(value)
    return value


Validity = Annotated[datetime | date | None, BeforeValidator(_date_or_instant)]


class Grant(_Doc):
    """One reason a member may enter: a plan, or a booking at named sites, between two instants.

    ``sites``, when given, replace the plan's sites: a booking of one site under any plan.

    ``valid_from`` is inclusive and ``valid_until`` exclusive. A bare date means the whole day in
    the site's time zone: from its first moment, or until the end of that day.
    """

    plan: Id | None = None
    sites: list[Id] | None = None
    valid_from: Validity = None
    valid_until: Validity = None

    @model_validator(mode="after")
    def _scope(self) -> Self:
        if self.plan is None and self.sites is None:
            raise ValueError("a grant without a plan must name its sites")
        for name in ("valid_from", "valid_until"):
            value = getattr(self, name)
            if isinstance(value, datetime) and value.tzinfo is None:
                raise ValueError(
                    f"{name} needs a UTC offset, for example 2026-01-01T00:00:00+01:00"
                )
        return self

    def bounds(self, tz: ZoneInfo) -> tuple[datetime | None, datetime | None]:
        """Return the validity as aware datetimes, resolving bare dates in the site's zone."""
        return _instant(self.valid_from, tz, end=False), _instant(self.valid_until, tz, end=True)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_micros(value: datetime) -> int:
    """Whole microseconds since the epoch, for exact comparisons at validity boundaries."""
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _instant(value: Validity, tz: ZoneInfo, end: bool) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    day = value + timedelta(days=1) if end else value
    return datetime.combine(day, time(0), tzinfo=tz)


class Member(_Doc):
    """A member by pseudonymous id; names stay at the hub."""

    id: Id
    blocked: bool = False
    grants: list[Grant] = Field(default_factory=list)


class Card(_Doc):
    """A card of a member, by keyed hash (or, only in hand-written files, by raw UID)."""

    hash: str | None = Field(default=None, pattern=rf"^[0-9a-f]{{{2 * CARD_HASH_BYTES}}}$")
    uid: str | None = None
    member: Id
    revoked: bool = False

    @model_validator(mode="after")
    def _one_identity(self) -> Self:
        if (self.hash is None) == (self.uid is None):
            raise ValueError("a card has exactly one of hash and uid")
        return self


class AccessList(_Doc):
    """A complete access list for one site at one version."""

    site: Id
    version: int = Field(ge=1)
    plans: list[Plan] = Field(default_factory=list)
    members: list[Member] = Field(default_factory=list)
    cards: list[Card] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references(self) -> Self:
        plans = _unique("plans", [p.id for p in self.plans])
        members = _unique("members", [m.id for m in self.members])
        for member in self.members:
            for grant in member.grants:
                if grant.plan is not None and grant.plan not in plans:
                    raise ValueError(f"member {member.id} has a grant of unknown plan {grant.plan}")
        for card in self.cards:
            if card.member not in members:
                raise ValueError(f"a card belongs to unknown member {card.member}")
        return self


def _unique(what: str, ids: list[str]) -> set[str]:
    unique = set(ids)
    if len(unique) != len(ids):
        dup = Counter(ids).most_common(1)[0][0]
        raise ValueError(f"{what}: id {dup} appears more than once")
    return unique


class AccessListDelta(_Doc):
    """The changes from version ``base`` to ``version``: rows to add or replace, ids to remove.

    A member listed here replaces the stored member, grants included.
    """

    site: Id
    version: int = Field(ge=2)
    base: int = Field(ge=1)
    plans: list[Plan] = Field(default_factory=list)
    members: list[Member] = Field(default_factory=list)
    cards: list[Card] = Field(default_factory=list)
    removed_plans: list[Id] = Field(default_factory=list)
    removed_members: list[Id] = Field(default_factory=list)
    removed_cards: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _forward(self) -> Self:
        if self.base >= self.version:
            raise ValueError("a delta's base must be older than its version")
        if any(card.hash is None for card in self.cards):
            raise ValueError("cards in a delta are given by hash")
        return self

    def is_empty(self) -> bool:
        changes = (self.plans, self.members, self.cards)
        removals = (self.removed_plans, self.removed_members, self.removed_cards)
        return not any(changes) and not any(removals)


#: An entry of an access list: a plan, a member or a card.
_Entry = TypeVar("_Entry", Plan, Member, Card)


def diff(old: AccessList, new: AccessList) -> AccessListDelta:
    """The delta that turns ``old`` into ``new`` (both compiled with card hashes)."""

    def changed(
        before: list[_Entry], after: list[_Entry], key: str
    ) -> tuple[list[_Entry], list[str]]:
        was = {getattr(item, key): item for item in before}
        now = {getattr(item, key): item for item in after}
        upserts = [item for k, item in now.items() if was.get(k) != item]
        return upserts, sorted(k for k in was if k not in now)

    plans, removed_plans = changed(old.plans, new.plans, "id")
    members, removed_members = changed(old.members, new.members, "id")
    cards, removed_cards = changed(old.cards, new.cards, "hash")
    return AccessListDelta(
        site=new.site,
        version=new.version,
        base=old.version,
        plans=plans,
        members=members,
        cards=cards,
        removed_plans=removed_plans,
        removed_members=removed_members,
        removed_cards=removed_cards,
    )


def patch(doc: AccessList, delta: AccessListDelta) -> AccessList:
    """Apply ``delta`` to ``doc`` in memory (the hub's view of what an edge now holds)."""
    if delta.site != doc.site or delta.base != doc.version:
        raise ValueError(f"delta {delta.base}->{delta.version} does not apply to {doc.version}")

    def merged(
        current: list[_Entry], upserts: list[_Entry], removed: list[str], key: str
    ) -> list[_Entry]:
        by_key = {getattr(item, key): item for item in current}
        for k in removed:
            by_key.pop(k, None)
        by_key.update({getattr(item, key): item for item in upserts})
        return list(by_key.values())

    return AccessList.model_construct(
        site=doc.site,
        version=delta.version,
        plans=merged(doc.plans, delta.plans, delta.removed_plans, "id"),
        members=merged(doc.members, delta.members, delta.removed_members, "id"),
        cards=merged(doc.cards, delta.cards, delta.removed_cards, "hash"),
    )
