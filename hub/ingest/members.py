"""Where each member may ever have been let in, as ingest checks an allowed door decision.

A door only lets in a member its signed list names, and the hub's lists name a member only
at the sites their grants, company or bookings reach. So an allowed entry of a member who
has no such reach at that site did not come from a door: someone on the broker published it
(issue 13: forged entries reached the monthly report and an operator's visits). Ingest files
those as dead letters.

"Ever": a grant's dates are not checked (a door decides by its list, which may be a little
behind the hub, and doors send events late after being offline), only whether the member
exists and any grant, their company or any booking reaches the site. A grant whose scope is
null (its own or its plan's) reaches every site.

Each worker caches each member's reach. A member it does not know, or whose reach lacks the
site, is looked up again, at most once per ``relook_seconds`` per member and in one round of
queries per batch for all of them, so a member given access a moment ago is believed at once
while a flood of invented names costs a bounded number of queries.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, select

from hub import db
from hub.rate_limits import Clock

#: A member is looked up again at most this often.
RELOOK_SECONDS = 1.0
#: Members remembered at most (all forgotten at once beyond it: it only costs lookups).
MAX_MEMBERS = 200_000
#: Member ids per IN list.
_CHUNK = 1000


@dataclass(frozen=True)
class Reach:
    """The sites a member may have been let in at: ``everywhere``, or ``sites``."""

    everywhere: bool
    sites: frozenset[str]

    def covers(self, site: str) -> bool:
        return self.everywhere or site in self.sites


NOWHERE = Reach(False, frozenset())


class MemberReach:
    """Each member's reach, cached per worker."""

    def __init__(
        self,
        engine: Engine,
        relook_seconds: float = RELOOK_SECONDS,
        max_members: int = MAX_MEMBERS,
        clock: Clock = time.monotonic,
    ) -> None:
        self.engine = engine
        self.relook_seconds = relook_seconds
        self.max_members = max_members
        self._clock = clock
        self._reach: dict[str, tuple[Reach, float]] = {}
        #: Members looked up in the store since the start.
        self.looked_up = 0

    def admitted(self, pairs: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
        """Of the (member, site) pairs, those where the member may have been let in.

        A name no member can have (one PostgreSQL cannot hold) is not looked up: the query
        would fail, and with it every batch the worker tries again with that message in it.
        """
        pairs = {(member, site) for member, site in pairs if _could_be_member(member)}
        now = self._clock()
        stale = {
            member
            for member, site in pairs
            if (hit := self._reach.get(member)) is None
            or (not hit[0].covers(site) and now - hit[1] >= self.relook_seconds)
        }
        if stale:
            self._look_up(sorted(stale), now)
        return {
            (member, site)
            for member, site in pairs
            if self._reach.get(member, (NOWHERE, 0.0))[0].covers(site)
        }

    def _look_up(self, members: list[str], now: float) -> None:
        if len(self._reach) + len(members) > self.max_members:
            self._reach.clear()
        with self.engine.connect() as conn:
            for i in range(0, len(members), _CHUNK):
                chunk = members[i : i + _CHUNK]
                for member, reach in reaches(conn, chunk).items():
                    self._reach[member] = (reach, now)
        self.looked_up += len(members)


def _could_be_member(member: str) -> bool:
    """Whether ``member`` could name a stored member: member ids hold no NUL (PostgreSQL
    refuses it in text, and the API refuses it on the way in)."""
    return "\x00" not in member


def reaches(conn: Connection, members: list[str]) -> dict[str, Reach]:
    """The reach of each of ``members`` (NOWHERE for one the hub does not have)."""
    m, g, p, c, b = db.members.c, db.grants.c, db.plans.c, db.companies.c, db.bookings.c
    found = dict(conn.execute(select(m.id, m.company_id).where(m.id.in_(members))).all())
    everywhere: set[str] = set()
    sites: dict[str, set[str]] = {member: set() for member in found}
    grants = conn.execute(
        select(g.member_id, g.plan_id, g.sites, p.id.label("plan"), p.sites.label("plan_sites"))
        .outerjoin(db.plans, p.id == g.plan_id)
        .where(g.member_id.in_(list(found)))
    )
    for row in grants:
        if row.plan_id is not None and row.plan is None:
            continue  # a grant of a missing plan is in no list (hub.access_compiler)
        scope = row.sites if row.sites is not None else row.plan_sites
        if scope is None:
            everywhere.add(row.member_id)
        else:
            sites[row.member_id].update(str(s) for s in scope)
    companies = {company for company in found.values() if company is not None}
    if companies:
        booked = dict(conn.execute(select(c.id, c.sites).where(c.id.in_(sorted(companies)))).all())
        for member, company in found.items():
            sites[member].update(str(s) for s in booked.get(company) or [])
    bookings = conn.execute(
        select(b.member_id, b.site_id).where(b.member_id.in_(list(found))).distinct()
    )
    for member, site in bookings:
        sites[member].add(site)
    reach = {member: Reach(member in everywhere, frozenset(sites[member])) for member in found}
    return {member: reach.get(member, NOWHERE) for member in members}
