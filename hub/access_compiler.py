"""Who may enter each site, compiled from the hub's tables into access lists.

A whole site's list (``compile_many``) reads every table once. Some members' entries at some
sites (``compile_entries``; ``compile_member`` for one) read only those members' rows: a change
to one member, or to the plan or company of many, reaches hundreds of sites without rebuilding
any of their lists.

A plan whose ``access`` is ``booked`` (a flex plan of so many days a month) lets nobody in by
itself: its members' standing grants of it, and a company's staff on it, are left out of every
list, and only their bookings' grants (``source == "booking"``) open a door.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, Row, func, select

from hafen.acl import AccessList, Card, Grant, Member, Plan
from hub import db

log = logging.getLogger(__name__)

#: ``plans.access`` of a plan that gives no standing access, only what its members booked.
BOOKED = "booked"
#: ``grants.source`` of a booking's grant: it opens the door whatever the member's plan.
FROM_BOOKING = "booking"
#: Members per ``IN (...)`` list: well below the bound parameters any database takes.
CHUNK = 500


def counts(plan_access: str | None, source: str) -> bool:
    """Whether a grant of a plan with ``plan_access`` (None: no plan) puts its member in a list."""
    return plan_access != BOOKED or source == FROM_BOOKING


def company_plan_counts(plan: str | None, plans: dict[str, Any]) -> bool:
    """Whether a company on ``plan`` gives its staff standing access (``plans``: id -> row)."""
    return plan is None or (plan in plans and plans[plan].access != BOOKED)


@dataclass
class MemberAccess:
    """One member's part of a site's list: their entry (None: not listed), the plans their
    grants use, and their cards (to list, or to forget where they are not listed)."""

    member: Member | None
    plans: list[Plan] = field(default_factory=list)
    cards: list[Card] = field(default_factory=list)


class AccessCompiler:
    """Builds sites' access lists from the hub's tables."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def compile(self, site: str, version: int) -> AccessList:
        return self.compile_many({site: version})[site]

    def compile_many(self, versions: dict[str, int]) -> dict[str, AccessList]:
        """The lists of several sites (site -> the version to give it) in one pass.

        Each grant, card and member entry is validated once and shared by every list that
        holds it (the models are frozen): a network-wide member is in hundreds of lists.
        """
        sites = set(versions)
        with self.engine.connect() as conn:
            parts = _Parts(conn)
            blocked = {m.id: m.blocked for m in conn.execute(select(db.members))}
            grant_rows = conn.execute(select(db.grants).order_by(db.grants.c.id))
            grants = parts.site_grants(grant_rows, sites, blocked)
            parts.add_company_grants(conn, grants)
            listed = {m for by_member in grants.values() for m in by_member}
            parts.add_cards(conn.execute(select(db.cards).order_by(db.cards.c.hash)), listed)
        return {site: parts.assemble(site, versions[site], grants[site], blocked) for site in sites}

    def compile_member(self, member: str, sites: set[str]) -> dict[str, MemberAccess]:
        """``member``'s entry in each of ``sites``' lists, reading only that member's rows."""
        entries = self.compile_entries({member: frozenset(sites)})
        return {site: entries[site][0][1] for site in sites}

    def compile_entries(
        self, wanted: dict[str, frozenset[str]]
    ) -> dict[str, list[tuple[str, MemberAccess]]]:
        """The entries of some members at some sites (member -> sites), reading only those
        members' rows: site -> (member, entry) in member order. A member the hub no longer
        has is listed nowhere (their cards are gone too: the caller names what doors must
        forget).

        Work is per member, not per member and site: a member's sites are split by the
        grants that reach them, and each part shares one entry (a plan gaining 250 sites
        gives its 5,000 holders one new entry each, listed at all 250).
        """
        members = sorted(wanted)
        g, c = db.grants.c, db.cards.c
        reach: dict[str, list[tuple[object, frozenset[str]]]] = {}
        with self.engine.connect() as conn:
            parts = _Parts(conn)
            blocked = _blocked(conn, members)
            for chunk in _chunks(members):
                rows = conn.execute(select(db.grants).where(g.member_id.in_(chunk)).order_by(g.id))
                for grant in rows:
                    listed, scope = parts.scope(grant, blocked)
                    if not listed:
                        continue
                    sites = wanted[grant.member_id]
                    hit = sites if scope is None else sites.intersection(scope)
                    if hit:
                        parts.grants.setdefault(grant.id, Grant.model_validate(_grant(grant)))
                        reach.setdefault(grant.member_id, []).append((grant.id, hit))
            every = frozenset().union(*wanted.values())
            for site, staff, company, plan in _company_grants(conn, every, parts.rows, blocked):
                key = ("company", company, site)
                parts.grants.setdefault(key, Grant(plan=plan, sites=[site]))
                reach.setdefault(staff, []).append((key, frozenset([site])))
            for chunk in _chunks(members):
                rows = conn.execute(select(db.cards).where(c.member_id.in_(chunk)).order_by(c.hash))
                parts.add_cards(rows, set(chunk))
        entries: dict[str, list[tuple[str, MemberAccess]]] = {site: [] for site in every}
        for member in members:
            for sites, keys in _split(wanted[member], reach.get(member, [])):
                entry = parts.entry(member, blocked, keys)
                pair = (member, entry)
                for site in sites:
                    entries[site].append(pair)
        return entries


def _split(
    sites: frozenset[str], grants: list[tuple[object, frozenset[str]]]
) -> list[tuple[frozenset[str], tuple]]:
    """``sites`` split into parts that the same grants reach: (sites, grant keys), the keys
    in the grants' order."""
    split: list[tuple[frozenset[str], tuple]] = [(sites, ())]
    for key, reach in grants:
        finer = []
        for part, keys in split:
            inside = part if reach == sites else part & reach
            if inside:
                finer.append((inside, (*keys, key)))
            if len(inside) < len(part):
                finer.append((part - inside, keys))
        split = finer
    return split


def _blocked(conn: Connection, members: list[str]) -> dict[str, bool]:
    """Whether each of ``members`` the hub has is blocked.

    More than one is read from all members, not with ``id IN (...)``: on a table of a few
    thousand members PostgreSQL answers that through the trigram index for member search,
    at some 5 ms an id (4 s for a company's 500 staff); a scan of 50,000 takes 50 ms.
    """
    m = db.members.c
    if len(members) == 1:
        return dict(conn.execute(select(m.id, m.blocked).where(m.id == members[0])).all())
    wanted = set(members)
    return {i: b for i, b in conn.execute(select(m.id, m.blocked)) if i in wanted}


def _chunks(items: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


class _Parts:
    """The validated pieces of access lists, each made once: plans, grants, cards, members."""

    def __init__(self, conn: Connection) -> None:
        self.rows = {p.id: p for p in conn.execute(select(db.plans))}
        self.plans = {
            p.id: Plan.model_validate({"id": p.id, "sites": p.sites, "windows": p.windows})
            for p in self.rows.values()
        }
        self.grants: dict[object, Grant] = {}
        self.cards: dict[str, list[Card]] = {}
        self._members: dict[tuple, Member] = {}
        self._used_plans: dict[tuple[str, ...], list[Plan]] = {}

    def scope(self, g: Row[Any], blocked: dict[str, bool]) -> tuple[bool, list[str] | None]:
        """Whether grant ``g`` puts its member in any list (not if its member or plan is
        missing, or it is a booked plan's own grant), and the sites it reaches (None: the
        whole network)."""
        plan = self.rows.get(g.plan_id) if g.plan_id else None
        if g.member_id not in blocked or (g.plan_id and plan is None):
            log.warning("grant %s points at a missing member or plan; left out", g.id)
            return False, None
        if not counts(plan.access if plan else None, g.source):
            return False, None  # a booked plan's own grant: only bookings open doors
        return True, g.sites if g.sites is not None else (plan.sites if plan else None)

    def site_grants(
        self, rows: Iterable[Row[Any]], sites: set[str], blocked: dict[str, bool]
    ) -> dict[str, dict[str, list[Any]]]:
        """site -> member -> the keys of the grants that reach the site."""
        grants: dict[str, dict[str, list]] = {site: {} for site in sites}
        for g in rows:
            listed, scope = self.scope(g, blocked)
            if not listed:
                continue
            reach = sites if scope is None else sites.intersection(scope)
            if reach:
                self.grants[g.id] = Grant.model_validate(_grant(g))
            for site in reach:
                grants[site].setdefault(g.member_id, []).append(g.id)
        return grants

    def add_company_grants(self, conn: Connection, grants: dict) -> None:
        """Each staff member's company grant at the company's sites."""
        for site, staff, company, plan in _company_grants(conn, set(grants), self.rows):
            key = ("company", company, site)
            if key not in self.grants:
                self.grants[key] = Grant(plan=plan, sites=[site])
            grants[site].setdefault(staff, []).append(key)

    def add_cards(self, rows: Iterable[Row[Any]], members: set[str]) -> None:
        for c in rows:
            if c.member_id in members:
                card = Card(hash=c.hash, member=c.member_id, revoked=c.revoked)
                self.cards.setdefault(c.member_id, []).append(card)

    def entry(self, member: str, blocked: dict[str, bool], keys: tuple) -> MemberAccess:
        """``member``'s part of a site's list where the grants ``keys`` reach it."""
        if not keys or member not in blocked:  # not listed: their cards are to be forgotten
            return MemberAccess(None, cards=self.cards.get(member, []))
        entry = self.member(member, blocked[member], keys)
        used = tuple(sorted({g.plan for g in entry.grants if g.plan}))
        if used not in self._used_plans:  # one list for all the entries that use these plans
            self._used_plans[used] = [self.plans[p] for p in used]
        return MemberAccess(entry, self._used_plans[used], self.cards.get(member, []))

    def member(self, member: str, blocked: bool, keys: list | tuple) -> Member:
        """One member's entry, shared by every list where the same grants reach."""
        memo = (member, blocked, tuple(keys))
        if memo not in self._members:
            self._members[memo] = Member(
                id=member, blocked=blocked, grants=[self.grants[k] for k in keys]
            )
        return self._members[memo]

    def assemble(self, site: str, version: int, grants: dict, blocked: dict) -> AccessList:
        members = [self.member(m, blocked[m], grants[m]) for m in sorted(grants)]
        used = {g.plan for m in members for g in m.grants if g.plan}
        cards = [c for m in members for c in self.cards.get(m.id, [])]
        # Built from validated parts; validating the list checks that references resolve.
        return AccessList.model_validate(
            {
                "site": site,
                "version": version,
                "plans": [self.plans[p] for p in sorted(used)],
                "members": members,
                "cards": sorted(cards, key=lambda c: c.hash),
            }
        )


def _company_grants(
    conn: Connection,
    sites: set[str] | frozenset[str],
    plans: dict,
    members: Collection[str] | None = None,
) -> list[tuple[str, str, str, str | None]]:
    """Staff of a company get the company's plan at the sites it booked ("commuter
    harbours"): (site, member, company, plan) for each; ``members``: only theirs. A company
    on a booked plan gives its staff nothing standing: they get in by their bookings."""
    companies = {
        c.id: c
        for c in conn.execute(select(db.companies))
        if c.sites and sites.intersection(c.sites) and company_plan_counts(c.plan_id, plans)
    }
    query = (
        select(db.members.c.id, db.members.c.company_id)
        .where(db.members.c.company_id.in_(sorted(companies)))
        .order_by(db.members.c.id)
    )
    return [
        (site, m.id, m.company_id, companies[m.company_id].plan_id)
        for m in conn.execute(query)
        if members is None or m.id in members
        for site in sorted(sites.intersection(companies[m.company_id].sites))
    ]


def _grant(row: Row) -> dict:
    return {
        "plan": row.plan_id,
        "sites": row.sites,
        "valid_from": db.aware(row.valid_from),
        "valid_until": db.aware(row.valid_until),
    }


def member_reach(conn: Connection, member: str) -> set[str]:
    """The sites whose lists hold ``member``: where their grants or company reach."""
    all_sites = set(conn.scalars(select(db.sites.c.id)))
    plans = {p.id: p for p in conn.execute(select(db.plans))}
    reach: set[str] = set()
    for grant in conn.execute(select(db.grants).where(db.grants.c.member_id == member)):
        plan = plans.get(grant.plan_id) if grant.plan_id is not None else None
        if grant.plan_id is not None and plan is None:
            continue  # left out of every list (see _Parts.site_grants): reaches nowhere
        if not counts(plan.access if plan else None, grant.source):
            continue  # a booked plan's own grant: in no list
        scope = grant.sites if grant.sites is not None else (plan.sites if plan else None)
        reach |= all_sites if scope is None else set(scope) & all_sites
    company = conn.execute(
        select(db.companies.c.sites, db.companies.c.plan_id)
        .join(db.members, db.members.c.company_id == db.companies.c.id)
        .where(db.members.c.id == member)
    ).one_or_none()
    if company is not None and company_plan_counts(company.plan_id, plans):
        reach |= set(company.sites or []) & all_sites
    return reach


def newest_versions(conn: Connection) -> dict[str, int]:
    """The newest published version of every site that has one: a look into the primary key
    per site, not a ``GROUP BY`` over every version ever published (which grows by one row
    per site and change; see benchmarks/acl_versions.py)."""
    v = db.acl_versions.c
    newest = select(func.max(v.version)).where(v.site == db.sites.c.id).scalar_subquery()
    rows = conn.execute(select(db.sites.c.id, newest))
    return {site: version for site, version in rows if version is not None}
