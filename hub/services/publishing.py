"""Telling the doors what changed: the one way a service sends access lists.

A service changes the store in its transaction, commits, then calls one of these with what the
change touched: one member at some sites (a card, grant, block, booking, employer, erasure), a
plan or a company (its state before the change, read in the transaction: hub.access_changes
works out whose entries changed where), or whole sites to recompile. Without a publisher (the
hub runs without a signing key or broker) the change is stored, a warning says the lists were
not sent, and nothing is returned; the doors get it with the next list that is sent.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from hub.access_changes import CompanyState, PlanState, company_change, plan_change
from hub.access_lists import AclPublisher, Published

log = logging.getLogger(__name__)


def _unsent(sites: set[str] | str) -> list[Published]:
    what = sites if isinstance(sites, str) else f"{len(sites)} sites' lists"
    log.warning("no broker configured: %s not sent", what)
    return []


def publish_member(
    publisher: AclPublisher | None,
    member: str,
    sites: Iterable[str],
    forgotten_cards: Iterable[str] = (),
) -> list[Published]:
    """Send ``member``'s new entry (or their removal) to ``sites`` as small deltas, without
    recompiling any site; ``forgotten_cards``: cards deleted from the hub that doors must drop."""
    sites = set(sites)
    if publisher is None:
        return _unsent(sites)
    if not sites:
        return []
    return publisher.publish_member(member, sites, set(forgotten_cards))


def publish_sites(publisher: AclPublisher | None, sites: Iterable[str]) -> list[Published]:
    """Recompile ``sites`` and send each one's changes (none for a site whose list is the same)."""
    sites = set(sites)
    if publisher is None:
        return _unsent(sites)
    if not sites:
        return []
    return publisher.publish_sites(sites)


def publish_plan_change(publisher: AclPublisher | None, before: PlanState) -> list[Published]:
    """A plan's sites, hours or access changed (``before``: as it was): its holders' entries
    go to the sites they gained or lost, its row to every site that uses it, as one delta per
    site (fast for hundreds of sites: none is recompiled)."""
    if publisher is None:
        return _unsent(f"the change of plan {before.id!r}")
    return publisher.publish_change(lambda conn: plan_change(conn, before))


def publish_company_change(
    publisher: AclPublisher | None, company: str, before: CompanyState | None
) -> list[Published]:
    """A company's sites or plan changed (``before``: as it was, None: it is new): its staff's
    entries go to the sites it added or dropped (all of its sites if its plan changed), as one
    delta per site."""
    if publisher is None:
        return _unsent(f"the change of company {company!r}")
    return publisher.publish_change(lambda conn: company_change(conn, company, before))
