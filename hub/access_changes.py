"""What a change to a plan or a company changes in the doors' lists, without rebuilding them.

A plan's sites or access, or a company's sites or plan, change the entries of just the members
who hold that plan or work for that company, at just the sites they gained or lost; a plan's
sites or hours change its row wherever it is used. ``plan_change`` and ``company_change`` work
that out from the state before the change and the stored one now, as a ``Change``: per site,
the members whose entries to send and the plan rows to send. The publisher then sends each
site one delta with all of it (hub.access_lists ``AclPublisher.publish_change``).

Deltas never remove a plan row. One that nobody uses any longer grants nothing, and removing
one that a door still holds a grant of (a change published after this one, say) would make the
door refuse the delta; the next full compile of the site drops it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Row, Table, select, update

from hafen.acl import AccessListDelta, Plan
from hub import db
from hub.access_compiler import BOOKED, MemberAccess, company_plan_counts, counts


@dataclass(frozen=True)
class PlanState:
    """What of a plan decides who gets in where: read before a change, compared after it."""

    id: str
    sites: list[str] | None
    windows: list[Any] | None
    access: str

    @classmethod
    def of(cls, row: Row[Any]) -> PlanState:
        return cls(row.id, row.sites, row.windows, row.access)

    def row(self) -> Plan:
        return Plan.model_validate({"id": self.id, "sites": self.sites, "windows": self.windows})


@dataclass(frozen=True)
class CompanyState:
    """What of a company decides where its staff get in."""

    id: str
    plan: str | None
    sites: list[str]


@dataclass
class Change:
    """The members whose entries may have changed, each with the sites where; per site, the
    plan rows that changed."""

    entries: dict[str, frozenset[str]] = field(default_factory=dict)
    plans: dict[str, list[Plan]] = field(default_factory=dict)

    def add_entries(self, members: Iterable[str], sites: Iterable[str]) -> None:
        sites = frozenset(sites)  # one set, shared by all of them
        if sites:
            for member in members:
                known = self.entries.get(member)
                self.entries[member] = sites if known is None else known | sites

    def sites(self) -> set[str]:
        distinct = {id(sites): sites for sites in self.entries.values()}
        return set(self.plans).union(*distinct.values())


def plan_state(conn: Connection, plan: str, lock: bool = False) -> PlanState | None:
    """The plan as stored; ``lock``: as the change this transaction makes replaces it (see
    ``_lock``)."""
    if lock:
        _lock(conn, db.plans, plan)
    row = conn.execute(select(db.plans).where(db.plans.c.id == plan)).one_or_none()
    return None if row is None else PlanState.of(row)


def company_state(conn: Connection, company: str, lock: bool = False) -> CompanyState | None:
    """The company as stored; ``lock``: as the change this transaction makes replaces it."""
    if lock:
        _lock(conn, db.companies, company)
    c = db.companies.c
    row = conn.execute(select(c.id, c.plan_id, c.sites).where(c.id == company)).one_or_none()
    return None if row is None else CompanyState(row.id, row.plan_id, row.sites or [])


def _lock(conn: Connection, table: Table, key: str) -> None:
    """Write the row first (to itself), as the booking pools do: the state read afterwards
    is the one this transaction's change replaces. Read unlocked, a change made meanwhile by
    another request (committed after the read, before this transaction's own write) would go
    unnoticed, and the doors would keep the entries of that state at the sites it touched.
    The write waits for the other's commit: on PostgreSQL the row's lock, on SQLite the
    database's write lock."""
    conn.execute(update(table).where(table.c.id == key).values(id=table.c.id))


def plan_change(conn: Connection, before: PlanState) -> Change:
    """What changed in the lists since the plan was ``before``: the entries of the members
    whose grants of it reach other sites now (or count no longer, or again: its access), and
    its row wherever it is used (its sites or hours)."""
    now = plan_state(conn, before.id)
    change = Change()
    if now is None:
        return change
    every = set(conn.scalars(select(db.sites.c.id)))
    if before.sites != now.sites or before.access != now.access:
        g = db.grants.c
        holders = conn.execute(
            select(g.member_id, g.sites, g.source)
            .join(db.members, db.members.c.id == g.member_id)
            .where(g.plan_id == now.id)
        )
        for member, sites, source in holders:
            was = _reach(before, sites, source, every)
            change.add_entries([member], was ^ _reach(now, sites, source, every))
        if before.access != now.access:  # its companies' staff gain or lose their entries
            for company, sites in conn.execute(
                select(db.companies.c.id, db.companies.c.sites).where(
                    db.companies.c.plan_id == now.id
                )
            ):
                change.add_entries(_staff(conn, company), _existing(sites or [], every))
    if before.sites != now.sites or before.windows != now.windows:
        row = now.row()
        for site in _used_at(conn, now, every):
            change.plans[site] = [row]
    return change


def company_change(conn: Connection, company: str, before: CompanyState | None) -> Change:
    """What changed in the lists since ``company`` was ``before`` (None: it is new): its
    staff's entries at the sites it added or dropped, or at all of them when its plan
    changed."""
    now = company_state(conn, company)
    plans = {p.id: p for p in conn.execute(select(db.plans))}
    every = set(conn.scalars(select(db.sites.c.id)))

    def reach(state: CompanyState | None) -> set[str]:
        if state is None or not company_plan_counts(state.plan, plans):
            return set()
        return _existing(state.sites, every)

    was, is_ = reach(before), reach(now)
    same_plan = before is not None and now is not None and before.plan == now.plan
    change = Change()
    change.add_entries(_staff(conn, company), was ^ is_ if same_plan else was | is_)
    return change


def entries_delta(
    site: str,
    version: int,
    entries: list[tuple[str, MemberAccess]],
    plans: Iterable[Plan] = (),
    forgotten_cards: Iterable[str] = (),
) -> AccessListDelta | None:
    """The delta from ``version`` that gives ``site`` these members' entries (a member not
    listed is removed, with their cards), the plan rows they and ``plans`` need, and drops
    ``forgotten_cards`` (cards deleted from the hub). None when there is nothing to send.

    Built from validated parts without validating them again: thousands of members a site,
    for hundreds of sites, is what a plan's change may send.
    """
    rows = {plan.id: plan for plan in plans}
    members, cards, removed_members, removed_cards = [], [], [], set(forgotten_cards)
    used: dict[int, list[Plan]] = {}  # the entries share their lists of plans: each once
    for member, entry in entries:
        if entry.member is None:
            removed_members.append(member)
            removed_cards.update(card.hash for card in entry.cards if card.hash)
            continue
        members.append(entry.member)
        cards.extend(entry.cards)
        used[id(entry.plans)] = entry.plans
    for plan_list in used.values():
        rows.update((plan.id, plan) for plan in plan_list)
    if removed_cards:  # a card listed again (an erased member's, say) stays
        removed_cards -= {card.hash for card in cards}
    if not (members or removed_members or removed_cards or rows):
        return None
    return AccessListDelta.model_construct(
        site=site,
        version=version + 1,
        base=version,
        plans=[rows[plan] for plan in sorted(rows)],
        members=members,
        cards=cards,
        removed_plans=[],
        removed_members=sorted(removed_members),
        removed_cards=sorted(card for card in removed_cards if card),
    )


def _reach(plan: PlanState, sites: list[str] | None, source: str, every: set[str]) -> set[str]:
    """The sites a grant of ``plan`` (its own ``sites``, None: the plan's; its ``source``)
    puts its member in the lists of, given the plan's state."""
    if not counts(plan.access, source):
        return set()
    scope = sites if sites is not None else plan.sites
    return every if scope is None else _existing(scope, every)


def _used_at(conn: Connection, plan: PlanState, every: set[str]) -> set[str]:
    """The sites whose lists use ``plan``: where a grant of it that counts reaches, or a
    company on it with staff booked."""
    g, m, c = db.grants.c, db.members.c, db.companies.c
    used: set[str] = set()
    for sites, source in conn.execute(
        select(g.sites, g.source).join(db.members, m.id == g.member_id).where(g.plan_id == plan.id)
    ):
        used |= _reach(plan, sites, source, every)
    if plan.access != BOOKED:
        staffed = select(m.company_id).where(m.company_id == c.id).exists()
        for (sites,) in conn.execute(select(c.sites).where(c.plan_id == plan.id, staffed)):
            used |= _existing(sites or [], every)
    return used


def _staff(conn: Connection, company: str) -> list[str]:
    m = db.members.c
    return list(conn.scalars(select(m.id).where(m.company_id == company)))


def _existing(sites: Iterable[str], every: set[str]) -> set[str]:
    return set(sites) & every
