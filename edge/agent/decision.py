"""The decision engine: may this card enter this site now? Allow, or deny with one reason.

Checks run card, then member, then each of the member's grants; the door opens when any grant
fits. When none fits, the reason reported is that of the grant that came closest: right site
beats wrong site, valid dates beat invalid ones, so a member with a daytime plan who comes at
night hears ``outside_schedule``, not ``wrong_site`` from some unrelated booking.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from hafen.acl import TimeWindow, epoch_micros
from hafen.protocol import AccessDecision, DenyReason

_CLOSENESS = {
    DenyReason.WRONG_SITE: 0,
    DenyReason.NOT_YET_VALID: 1,
    DenyReason.EXPIRED: 1,
    DenyReason.OUTSIDE_SCHEDULE: 2,
}


#: A grant as the decision reads it: plan, sites (JSON), windows (JSON), valid from and until
#: (epoch microseconds); each may be NULL.
GrantRow = tuple[str | None, str | None, str | None, int | None, int | None]


@dataclass(frozen=True)
class Decision:
    """The outcome for one tap."""

    allowed: bool
    reason: DenyReason | None = None
    member: str | None = None
    plan: str | None = None

    def payload(self, card: str) -> AccessDecision:
        return AccessDecision(
            card=card, allowed=self.allowed, reason=self.reason, member=self.member, plan=self.plan
        )


class AccessPolicy:
    """Decides taps for one site from the access list in the local store."""

    def __init__(self, site: str, tz: ZoneInfo) -> None:
        self.site = site
        self.tz = tz

    def decide(self, conn: sqlite3.Connection, card: str, now: datetime) -> Decision:
        """Decide for the card with keyed hash ``card`` at the aware instant ``now``."""
        row = conn.execute(
            "SELECT member_id, revoked FROM cards WHERE hash = ?", (card,)
        ).fetchone()
        if row is None:
            return Decision(False, DenyReason.UNKNOWN_CARD)
        member, revoked = row
        if revoked:
            return Decision(False, DenyReason.REVOKED, member)
        blocked = conn.execute("SELECT blocked FROM members WHERE id = ?", (member,)).fetchone()
        if blocked is None:
            return Decision(False, DenyReason.UNKNOWN_CARD)
        if blocked[0]:
            return Decision(False, DenyReason.BLOCKED, member)
        grants = conn.execute(
            "SELECT g.plan_id, coalesce(g.sites, p.sites), p.windows, g.valid_from_us,"
            " g.valid_until_us FROM grants g LEFT JOIN plans p ON p.id = g.plan_id"
            " WHERE g.member_id = ?",
            (member,),
        ).fetchall()
        return self._best(member, grants, now)

    def _best(self, member: str, grants: list[GrantRow], now: datetime) -> Decision:
        now_us = epoch_micros(now)
        local = now.astimezone(self.tz)
        weekday = local.weekday()
        second = local.hour * 3600 + local.minute * 60 + local.second + local.microsecond / 1e6
        closest: tuple[DenyReason, str | None] = (DenyReason.WRONG_SITE, None)
        for plan, sites, windows, valid_from, valid_until in grants:
            reason = self._check(sites, windows, valid_from, valid_until, now_us, weekday, second)
            if reason is None:
                return Decision(True, None, member, plan)
            if _CLOSENESS[reason] > _CLOSENESS[closest[0]]:
                closest = (reason, plan)
        return Decision(False, closest[0], member, closest[1])

    def _check(
        self,
        sites: str | None,
        windows: str | None,
        valid_from: int | None,
        valid_until: int | None,
        now_us: int,
        weekday: int,
        second: float,
    ) -> DenyReason | None:
        if sites is not None and self.site not in _sites(sites):
            return DenyReason.WRONG_SITE
        if valid_from is not None and now_us < valid_from:
            return DenyReason.NOT_YET_VALID
        if valid_until is not None and now_us >= valid_until:
            return DenyReason.EXPIRED
        if windows is not None and not any(w.contains(weekday, second) for w in _windows(windows)):
            return DenyReason.OUTSIDE_SCHEDULE
        return None


@lru_cache(maxsize=256)
def _sites(text: str) -> frozenset[str]:
    return frozenset(json.loads(text))


@lru_cache(maxsize=256)
def _windows(text: str) -> tuple[TimeWindow, ...]:
    return tuple(TimeWindow.model_validate(w) for w in json.loads(text))
