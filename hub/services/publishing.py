"""Telling the doors what changed: the one way a service sends access lists.

A service changes the store in its transaction, commits, then calls one of these with what the
change touched: one member at some sites (a card, grant, block, booking, employer, erasure),
whole sites (a company's sites, a plan's sites), or a plan's hours. Without a publisher (the
hub runs without a signing key or broker) the change is stored, a warning says the lists were
not sent, and nothing is returned; the doors get it with the next list that is sent.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from hafen.acl import Plan
from hub.access_lists import AclPublisher, Published

log = logging.getLogger(__name__)


def _unsent(sites: set[str]) -> list[Published]:
    log.warning("no broker configured: %d sites' lists not sent", len(sites))
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


def publish_plan_hours(
    publisher: AclPublisher | None, plan: Plan, sites: Iterable[str]
) -> list[Published]:
    """A plan's hours changed, not its sites: the same members, so each site gets only the
    plan's new row (fast for hundreds of sites)."""
    sites = set(sites)
    if publisher is None:
        return _unsent(sites)
    return publisher.publish_plan(plan, sites)
