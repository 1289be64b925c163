"""The reader: wait for a card and say what the door would decide for it from the local list.

The check passes when a card is read, whatever the list decides: a technician's own card may
well be unknown at this door, and the reader worked. The decision and its reason are shown
(the member only on the door's terminal); the card only as the first digits of its keyed
hash, never its UID. No card within the wait is a failure, since a silent reader and a broken
one look alike; a technician without a card skips the check (``--no-card``).
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from datetime import UTC, datetime

from edge.agent.access_list import applied_version
from edge.agent.decision import AccessPolicy
from edge.agent.store import EdgeStore
from edge.drivers.nfc_reader import CardRead, NfcReader
from edge.selftest.results import CheckResult, failed, passed
from hafen.cards import short

Say = Callable[[str], None]
#: What the reader's thread hands over: a card, or a fault (None: it recovered).
Tap = CardRead | tuple[str | None]


def check_card(
    reader: NfcReader,
    taps: queue.SimpleQueue[Tap],
    describe: Callable[[bytes], tuple[str, str]],
    wait: float,
    say: Say,
) -> CheckResult:
    """Start ``reader`` (whose callbacks put into ``taps``) and wait ``wait`` seconds for a
    card; ``describe`` turns its UID into what the door decides (for the hub, and for the
    terminal only)."""
    say(f"Hold a card to the reader now ({wait:g} s) ...")
    reader.start()
    try:
        tap = _next_card(taps, wait)
    finally:
        reader.stop()
    if isinstance(tap, tuple):
        return failed("card", f"the reader failed: {tap[0]}")
    if tap is None:
        return failed("card", f"no card within {wait:g} s (--no-card skips this check)")
    detail, local = describe(tap.uid)
    return passed("card", detail, local)


def _next_card(taps: queue.SimpleQueue[Tap], wait: float) -> CardRead | tuple[str] | None:
    """The first card read within ``wait`` seconds, or the reader's first fault, or None."""
    deadline = time.monotonic() + wait
    try:
        while True:
            tap = taps.get(timeout=max(0.0, deadline - time.monotonic()))
            if isinstance(tap, CardRead):
                return tap
            if tap[0] is not None:
                return (tap[0],)
    except queue.Empty:
        return None


def describe_decision(store: EdgeStore | None, policy: AccessPolicy, card: str) -> tuple[str, str]:
    """What the door decides now for ``card`` (a keyed hash) from the list in force: the words
    for the hub, and the member and card (hash prefix) for the terminal only."""
    if store is None or applied_version(store) == 0:
        return "read; no access list to decide by", short(card)
    with store.read() as conn:
        decision = policy.decide(conn, card, datetime.now(UTC))
    local = f"member {decision.member}, {short(card)}" if decision.member else short(card)
    if decision.allowed:
        return (f"allowed (plan {decision.plan})" if decision.plan else "allowed"), local
    reason = decision.reason.value.replace("_", " ") if decision.reason else "no reason"
    return f"denied: {reason}", local
