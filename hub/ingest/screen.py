"""What ingest believes before it stores: the checks between reading a batch and writing it.

Anyone connected to the broker can publish on a device's topics until devices have
identities of their own (issue 13). The store must hold only what a registered door could
have sent, and a door's progress mark (up to which seq the hub holds everything, told back to
the door so it can forget its events) must never move on someone else's word. So each batch
is screened; what fails becomes a dead letter (hub.ingest.dead_letters) with its reason:

- **Registry**: events and states of a site or device the hub has not registered
  (hub.ingest.registry). Filed *without* their place (no event id, epoch or seq): they fill
  no gap, and a real door registered later that sends the same event gets it stored.
- **Far ahead**: an event whose seq is more than ``MAX_AHEAD`` past its device's mark in its
  epoch. Filed without its place, so it can never let the mark pass a real gap. A new epoch
  (a recovered store) starts at mark 0 and is believed like any other.
- **Member**: an allowed door decision naming a member who has no access at that site
  (hub.ingest.members), or naming no member without the reason a fail-safe door gives.
- **Headcount**: an occupancy sample counting more people than the site can hold, or whose
  interval's upper bound does (it alone would show a full site: "free desks now" trusts it).

The last two keep their place: the event is a real door's as far as the hub can tell, and
its place is filled either way (the mark must pass it, or the door's outbox would stall).

Why ``MAX_AHEAD`` is a million: a door sends its outbox in seq order from just past the
hub's mark, so its events arrive near the mark; they run far ahead only when events in
between were lost on the way, and then by at most the door's backlog. A busy door publishes
a few thousand events a day (taps, a sample a minute, alarms), so a million is a backlog of
about a year offline; the edge's salvage of a damaged store fills holes of up to 100,000
(edge.agent.salvage.MAX_HOLE). Beyond that, nothing a real door sends.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select, tuple_

from hafen.protocol import DenyReason, EventKind
from hub import db
from hub.ingest.batch import Batch
from hub.ingest.dead_letters import dead_letter, has_place, without_place
from hub.ingest.members import MemberReach
from hub.ingest.registry import Registry

#: How far past its device's mark an event's seq may be (see above).
MAX_AHEAD = 1_000_000
#: A headcount above this is not believed at a site with a capacity ...
HEADCOUNT_PER_CAPACITY = 2
HEADCOUNT_SLACK = 10
#: ... and above this at a site without one.
HEADCOUNT_WITHOUT_CAPACITY = 500
#: Why a door lets someone in without a member: it decided by its fail mode (fail-safe).
FAIL_SAFE_REASONS = frozenset({DenyReason.NO_ACCESS_LIST.value, DenyReason.STORE_FAILED.value})
#: Marks remembered at most (forgotten all at once beyond it: it only costs a query).
MAX_MARKS = 100_000

Place = tuple[str, str, str]


class Marks:
    """Devices' progress marks, as far as this worker knows them: never above the stored
    mark (marks only grow), so a stale one only makes the check stricter, and an event that
    fails it is checked once more against the store before it is refused."""

    def __init__(self, engine: Engine, max_marks: int = MAX_MARKS) -> None:
        self.engine = engine
        self.max_marks = max_marks
        self._marks: dict[Place, int] = {}

    def note(self, place: Place, mark: int) -> None:
        if len(self._marks) >= self.max_marks and place not in self._marks:
            self._marks.clear()
        self._marks[place] = max(mark, self._marks.get(place, 0))

    def get(self, place: Place) -> int | None:
        return self._marks.get(place)

    def load(self, places: Iterable[Place]) -> None:
        """Read the stored marks of ``places`` (0 for a place with none yet)."""
        wanted = sorted(set(places))
        if not wanted:
            return
        p = db.device_progress.c
        with self.engine.connect() as conn:
            for i in range(0, len(wanted), 500):
                chunk = wanted[i : i + 500]
                stored = {
                    (r.site, r.device, r.epoch): r.stored_seq
                    for r in conn.execute(
                        select(p.site, p.device, p.epoch, p.stored_seq).where(
                            tuple_(p.site, p.device, p.epoch).in_(chunk)
                        )
                    )
                }
                for place in chunk:
                    self.note(place, stored.get(place, 0))


class Screen:
    """Moves what is not to be believed out of a batch, into its dead letters."""

    def __init__(self, engine: Engine, registry: Registry | None = None) -> None:
        self.registry = registry or Registry(engine)
        self.members = MemberReach(engine)
        self.marks = Marks(engine)

    def screen(self, batch: Batch, now: datetime) -> None:
        self._registered(batch, now)
        self._near_marks(batch, now)
        self._members(batch, now)
        self._headcounts(batch, now)

    def _refuse(self, batch: Batch, event: dict, now: datetime, reason: str, keep: bool) -> None:
        """File ``event`` as a dead letter (with its place if ``keep``)."""
        letter = dead_letter(batch.sources[event["event_id"]], now, reason, **_place(event))
        batch.dead.append(letter if keep else without_place(letter, reason))

    def _registered(self, batch: Batch, now: datetime) -> None:
        known = self.registry.has_device
        kept = []
        for event in batch.events:
            if known(event["site"], event["device"]):
                kept.append(event)
            else:
                self._refuse(batch, event, now, self._unknown(event["site"]), keep=False)
        batch.events = kept
        batch.dead = [
            d
            if not has_place(d) or known(d["site"], d["device"])
            else without_place(d, f"{d['reason']}; {self._unknown(d['site'])}")
            for d in batch.dead
        ]
        states = []
        for report in batch.states:
            if known(report.site, report.device):
                states.append(report)
            else:
                where = {"site": report.site, "device": report.device}
                reason = f"state: {self._unknown(report.site)}"
                batch.dead.append(dead_letter(report.message, now, reason, **where))
        batch.states = states

    def _unknown(self, site: str) -> str:
        if self.registry.site(site) is None:
            return "unknown site"
        return "unregistered device"

    def _near_marks(self, batch: Batch, now: datetime) -> None:
        rows = [*batch.events, *(d for d in batch.dead if has_place(d))]
        unknown = {_key(r) for r in rows if self.marks.get(_key(r)) is None}
        self.marks.load(unknown)
        # Another worker may have moved a mark since this one knew it: look once more.
        self.marks.load({_key(r) for r in rows if r["seq"] > self._limit(r)} - unknown)
        kept = []
        for event in batch.events:
            if event["seq"] <= self._limit(event):
                kept.append(event)
            else:
                self._refuse(batch, event, now, self._far(event), keep=False)
        batch.events = kept
        batch.dead = [
            d
            if not has_place(d) or d["seq"] <= self._limit(d)
            else without_place(d, f"{d['reason']}; {self._far(d)}")
            for d in batch.dead
        ]

    def _limit(self, row: dict[str, Any]) -> int:
        return (self.marks.get(_key(row)) or 0) + MAX_AHEAD

    def _far(self, row: dict[str, Any]) -> str:
        mark = self.marks.get(_key(row)) or 0
        return f"seq {row['seq']} is more than {MAX_AHEAD} past the device's mark {mark}"

    def _members(self, batch: Batch, now: datetime) -> None:
        entries = [e for e in batch.events if _allowed_decision(e)]
        named = {(str(e["data"]["member"]), e["site"]) for e in entries if _member(e)}
        admitted = self.members.admitted(named) if named else set()
        refused: dict[str, str] = {}
        for event in entries:
            member = _member(event)
            if member is not None and (member, event["site"]) not in admitted:
                refused[event["event_id"]] = "member has no access at this site"
            elif member is None and event["data"].get("reason") not in FAIL_SAFE_REASONS:
                refused[event["event_id"]] = "allowed without a member or a fail-safe reason"
        self._drop(batch, refused, now)

    def _headcounts(self, batch: Batch, now: datetime) -> None:
        refused = {}
        for event in batch.events:
            if event["kind"] != EventKind.OCCUPANCY:
                continue
            site = self.registry.site(event["site"])
            capacity = site.capacity if site is not None else None
            most = (
                HEADCOUNT_PER_CAPACITY * capacity + HEADCOUNT_SLACK
                if capacity
                else HEADCOUNT_WITHOUT_CAPACITY
            )
            data = event["data"]
            if max(data["count"], data.get("high") or 0) > most:
                refused[event["event_id"]] = f"implausible headcount (more than {most})"
        self._drop(batch, refused, now)

    def _drop(self, batch: Batch, refused: dict[str, str], now: datetime) -> None:
        """File the events named in ``refused`` as dead letters that keep their place."""
        if not refused:
            return
        kept = []
        for event in batch.events:
            reason = refused.get(event["event_id"])
            if reason is None:
                kept.append(event)
            else:
                self._refuse(batch, event, now, reason, keep=True)
        batch.events = kept


def _key(row: dict[str, Any]) -> Place:
    return (row["site"], row["device"], row["epoch"])


def _place(event: dict[str, Any]) -> dict[str, Any]:
    return {k: event[k] for k in ("event_id", "site", "device", "epoch", "seq")}


def _allowed_decision(event: dict[str, Any]) -> bool:
    return event["kind"] == EventKind.ACCESS_DECISION and event["data"].get("allowed") is True


def _member(event: dict[str, Any]) -> str | None:
    member = event["data"].get("member")
    return None if member is None else str(member)
