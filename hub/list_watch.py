"""The hub checks, not just listens: it sends each site's newest access list again until every
one of the site's doors shows it in a state of its own.

Why: a third party on the broker can put an older, validly signed list back as the site's
retained list and wipe a door's session (and the catch-up snapshot queued in it) by taking
over its client id (issue 13): the door then never hears of a block. States that do not carry
the door's proof never reach the store, so what the store says a door holds is what it holds.

For each online door whose state shows an older version than its site's newest, the watch
publishes the newest list again, retained, as it was first sent; a door that a delta cannot
bring up to date (it does not hold the delta's base), or that the retained list has not
helped after ``snapshot_after`` tries, gets a snapshot on its own ``cmd/acl_snapshot``. Per
door the tries back off (15 s, doubling to 5 min), starting afresh with each new version; one
token bucket bounds the messages of the whole network. An offline door is not chased (a
snapshot would queue in its broker session); it is sent the list when its state says it is
back. A door is logged once when it becomes unverified (hub.list_acks) and once when it is
verified again.

``hafen hub serve`` runs one (hub.app's lifespan); tests and the demo may start their own.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Engine

from hub.access_lists import AclPublisher
from hub.list_acks import DoorAck, ListVersion, door_acks, list_versions
from hub.rate_limits import Clock, TokenBucket

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WatchLimits:
    """How often the watch looks and how much it may send."""

    #: A lagging door is first sent the list again this long after the watch sees it lag ...
    first_seconds: float = 15.0
    #: ... then after twice as long each time, up to this.
    max_seconds: float = 300.0
    #: Messages (lists and snapshots) of the whole network: this many at once, then per second.
    burst: int = 10
    per_second: float = 5.0
    #: Tries with the retained list before a door gets a snapshot of its own instead.
    snapshot_after: int = 2
    #: How often the store is read.
    tick_seconds: float = 1.0

    def __post_init__(self) -> None:
        for name in ("first_seconds", "max_seconds", "burst", "per_second", "tick_seconds"):
            if not getattr(self, name) > 0:
                raise ValueError(f"list watch limit {name} must be above 0")
        if self.max_seconds < self.first_seconds:
            raise ValueError("list watch limit max_seconds must be at least first_seconds")
        if self.snapshot_after < 0:
            raise ValueError("list watch limit snapshot_after must be 0 or more")


@dataclass(frozen=True)
class Resent:
    """One message the watch sent: the site's list retained (``device`` None), or a door's
    own snapshot."""

    site: str
    device: str | None
    kind: str  # "retained" or "snapshot"
    version: int | None  # None: the broker did not take it


@dataclass
class _Chase:
    """A lagging door: the version it is being sent, when next, and how often so far."""

    version: int
    due: float
    delay: float
    tries: int = 0


@dataclass
class _Plan:
    """What a tick sends for one due door."""

    door: DoorAck
    chase: _Chase
    retained: bool
    snapshot: bool
    messages: int = field(init=False)

    def __post_init__(self) -> None:
        self.messages = int(self.retained) + int(self.snapshot)


class ListWatch:
    """Sends sites' newest lists again until each door's own state shows them."""

    def __init__(
        self,
        engine: Engine,
        publisher: AclPublisher,
        limits: WatchLimits | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self.engine = engine
        self.publisher = publisher
        self.limits = limits or WatchLimits()
        self._clock = clock
        self._bucket = TokenBucket(self.limits.per_second, self.limits.burst, clock)
        self._chases: dict[tuple[str, str], _Chase] = {}
        self._unverified: set[tuple[str, str]] = set()
        #: Per site, the version last sent again retained and when: one send serves every
        #: door of the site that is due within ``first_seconds`` of it.
        self._restored: dict[str, tuple[int, float]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False
        #: Messages sent since the start, by kind ("retained", "snapshot").
        self.sent: Counter[str] = Counter()

    def start(self) -> ListWatch:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="acl-watch", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.limits.tick_seconds):
            try:
                self.tick()
                self._failing = False
            except Exception:  # the store or broker is away: say so once, keep looking
                if not self._failing:
                    log.exception("the access-list watch could not look; trying again")
                self._failing = True

    def tick(self) -> list[Resent]:
        """One look at the store: send what is due, within the limits; returns what was sent."""
        now = self._clock()
        with self.engine.connect() as conn:
            doors = door_acks(conn, datetime.now(UTC))
            self._note_verification(doors)
            lagging = self._follow(doors, now)
            due = sorted((c.due, key) for key, (_, c) in lagging.items() if c.due <= now)
            wanted = {(lagging[key][0].site, lagging[key][1].version) for _, key in due}
            versions = list_versions(conn, wanted)
        sites = {site for site, _ in lagging}
        self._restored = {s: r for s, r in self._restored.items() if s in sites}
        sent: list[Resent] = []
        for _, key in due:
            door, chase = lagging[key]
            plan = self._plan(door, chase, versions.get(door.site), now)
            if plan.messages and not self._bucket.take(plan.messages):
                break  # the network's budget is spent: the rest stay due for the next tick
            sent += self._send(plan)
            if plan.retained:
                self._restored[door.site] = (chase.version, now)
            chase.tries += 1
            chase.delay = min(chase.delay * 2, self.limits.max_seconds)
            chase.due = now + chase.delay
        return sent

    def _follow(
        self, doors: list[DoorAck], now: float
    ) -> dict[tuple[str, str], tuple[DoorAck, _Chase]]:
        """The online doors that lag, each with its chase (a new one for a new version);
        doors that caught up, went offline or were removed are forgotten."""
        first = self.limits.first_seconds
        lagging = {}
        for door in doors:
            if not door.online or not door.lagging or door.newest is None:
                continue
            key = (door.site, door.device)
            chase = self._chases.get(key)
            if chase is None or chase.version != door.newest:
                chase = _Chase(door.newest, now + first, first)
            lagging[key] = (door, chase)
        self._chases = {key: chase for key, (_, chase) in lagging.items()}
        return lagging

    def _plan(self, door: DoorAck, chase: _Chase, newest: ListVersion | None, now: float) -> _Plan:
        """The retained list again while it may help (once for all the site's doors due
        within ``first_seconds``); a snapshot for a door the newest delta does not fit, or
        that the retained list did not help."""
        retained_helps = chase.tries < self.limits.snapshot_after
        fits = newest is None or newest.kind != "delta" or newest.base == (door.acked or 0)
        version, at = self._restored.get(door.site, (None, 0.0))
        just_sent = version == chase.version and now - at < self.limits.first_seconds
        return _Plan(
            door,
            chase,
            retained=retained_helps and not just_sent,
            snapshot=not (retained_helps and fits),
        )

    def _send(self, plan: _Plan) -> list[Resent]:
        door, sent = plan.door, []
        if plan.retained:
            version = self.publisher.resend_newest(door.site)
            sent.append(Resent(door.site, None, "retained", version))
            self.sent["retained"] += 1
        if plan.snapshot:
            ok = self.publisher.send_snapshot(door.site, door.device)
            version = plan.chase.version if ok else None
            sent.append(Resent(door.site, door.device, "snapshot", version))
            self.sent["snapshot"] += 1
        log.info(
            "%s.%s shows version %s of %s: sent %s again (try %d)",
            door.site,
            door.device,
            door.acked,
            plan.chase.version,
            " and ".join(r.kind for r in sent),
            plan.chase.tries + 1,
        )
        return sent

    def _note_verification(self, doors: list[DoorAck]) -> None:
        """Log once when a door becomes unverified, and once when it is verified again."""
        now_unverified = set()
        for door in doors:
            key = (door.site, door.device)
            if door.unverified:
                now_unverified.add(key)
                if key not in self._unverified:
                    log.warning(
                        "%s.%s is unverified: its state shows version %s, not version %s of"
                        " its site's list (online: %s)",
                        door.site,
                        door.device,
                        door.acked,
                        door.required,
                        door.online,
                    )
            elif key in self._unverified:
                log.info("%s.%s is verified again: it shows version %s", *key, door.acked)
        self._unverified = now_unverified

    @property
    def unverified(self) -> frozenset[tuple[str, str]]:
        """The doors unverified at the last look."""
        return frozenset(self._unverified)
