"""Access lists at the hub: compile who may enter each site, version, sign and publish them.

Each site's list has its own version sequence. A change goes out as a delta from the version
the site has, or as a snapshot when that is smaller; both are retained on the site's topic so a
device that reconnects gets the newest. A device that is further behind gets a snapshot of its
own (``cmd/acl_snapshot``) when its state shows the lag.
"""

from __future__ import annotations

import functools
import logging
import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Concatenate, ParamSpec, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, func, select

from hafen import protocol
from hafen.acl import AccessList, AccessListDelta, Plan, diff, patch
from hafen.signing import seal
from hub import db
from hub.access_compiler import AccessCompiler, newest_versions

log = logging.getLogger(__name__)

#: Sites whose current list the publisher keeps in memory (the rest are rebuilt on demand).
CACHED_SITES = 64
#: A device's state at connect may predate its retained list: look again after this long.
CATCH_UP_DELAY = 3.0
#: publish(topic, payload, retain) -> None, returning once the broker has the message.
Publish = Callable[[str, bytes, bool], None]
#: The same for a batch, sent without waiting in between.
PublishMany = Callable[[list[tuple[str, bytes, bool]]], None]


@dataclass(frozen=True)
class Published:
    """One access-list message that went out."""

    site: str
    version: int
    kind: str
    size: int


P = ParamSpec("P")
R = TypeVar("R")


def _locked(
    method: Callable[Concatenate[AclPublisher, P], R],
) -> Callable[Concatenate[AclPublisher, P], R]:
    """Run a publisher method under its lock: read the current version, send the next."""

    @functools.wraps(method)
    def wrapper(self: AclPublisher, *args: P.args, **kwargs: P.kwargs) -> R:
        with self._lock:
            return method(self, *args, **kwargs)

    return wrapper


class AclPublisher:
    """Versions, signs and publishes access lists; remembers what each site was sent."""

    def __init__(
        self,
        engine: Engine,
        key: Ed25519PrivateKey,
        publish: Publish,
        publish_many: PublishMany | None = None,
    ) -> None:
        self.engine = engine
        self.key = key
        self._publish = publish
        self._publish_many = publish_many or self._publish_each
        self.compiler = AccessCompiler(engine)
        self._current: OrderedDict[str, AccessList] = OrderedDict()
        self._lock = threading.RLock()  # one version at a time per publisher
        #: Per site, the newest recorded version whose message the broker has not taken yet.
        self._unsent: dict[str, tuple[int, bytes]] = {}
        self._timers: dict[tuple[str, str], threading.Timer] = {}

    def _publish_each(self, messages: list[tuple[str, bytes, bool]]) -> None:
        for topic, payload, retain in messages:
            self._publish(topic, payload, retain)

    def send(self, topic: str, payload: bytes, retain: bool = False) -> None:
        """Publish any message on the publisher's connection (commands, say)."""
        self._publish(topic, payload, retain)

    # -- what a site holds -----------------------------------------------------------------------
    def current(self, site: str) -> AccessList | None:
        """The newest list published for ``site``, rebuilt from stored snapshot and deltas."""
        if site in self._current:
            self._current.move_to_end(site)
            return self._current[site]
        with self.engine.connect() as conn:
            newest_snapshot = conn.scalar(
                select(func.max(db.acl_versions.c.version)).where(
                    db.acl_versions.c.site == site, db.acl_versions.c.kind == "snapshot"
                )
            )
            rows = conn.execute(
                select(db.acl_versions)
                .where(db.acl_versions.c.site == site)
                .where(db.acl_versions.c.version >= (newest_snapshot or 0))
                .order_by(db.acl_versions.c.version)
            ).all()
        doc = None
        for row in rows:
            body = zlib.decompress(row.body)
            if row.kind == "snapshot":
                doc = AccessList.model_validate_json(body)
            elif doc is not None:
                doc = patch(doc, AccessListDelta.model_validate_json(body))
        if doc is not None:
            self._remember(doc)
        return doc

    def _remember(self, doc: AccessList) -> None:
        """Keep the newest lists in memory, the least recently used going first."""
        self._current[doc.site] = doc
        self._current.move_to_end(doc.site)
        while len(self._current) > CACHED_SITES:
            self._current.popitem(last=False)

    # -- publishing ------------------------------------------------------------------------------
    @_locked
    def publish_site(self, site: str) -> Published | None:
        """Compile ``site`` afresh and send whatever changed; None if nothing did."""
        previous = self.current(site)
        version = previous.version + 1 if previous else 1
        fresh = self.compiler.compile(site, version)
        if previous is None:
            return self._send(fresh, None)
        delta = diff(previous, fresh)
        if delta.is_empty():
            return None
        return self._send(fresh, delta)

    @_locked
    def publish_sites(self, sites: set[str] | list[str]) -> list[Published]:
        """Compile several sites in one pass and send each one's changes (a plan change)."""
        previous = {site: self.current(site) for site in sorted(sites)}
        versions = {site: doc.version + 1 if doc else 1 for site, doc in previous.items()}
        fresh = self.compiler.compile_many(versions)
        sent = []
        for site, doc in previous.items():
            if doc is None:
                sent.append(self._send(fresh[site], None))
                continue
            delta = diff(doc, fresh[site])
            if not delta.is_empty():
                sent.append(self._send(fresh[site], delta))
        return sent

    @_locked
    def publish_plan(self, plan: Plan, sites: Iterable[str]) -> list[Published]:
        """A plan's hours changed, not its sites: send each site just the new plan row.

        No site is recompiled, so this is fast for hundreds of sites.
        """
        return self._publish_deltas(
            sites,
            lambda site, version: AccessListDelta(
                site=site, version=version + 1, base=version, plans=[plan]
            ),
        )

    @_locked
    def publish_member(
        self, member: str, sites: Iterable[str], forgotten_cards: Iterable[str] = ()
    ) -> list[Published]:
        """One member changed (grant, card, block, booking, erasure): send each of ``sites``
        that member's entry as a delta, or their removal where they no longer have access.

        Only the member's rows are read, so this is fast for hundreds of sites.
        ``forgotten_cards``: hashes of cards deleted from the hub (an erasure) that doors
        must forget too.
        """
        sites = set(sites)
        access = self.compiler.compile_member(member, sites)
        forgotten = set(forgotten_cards)

        def delta(site: str, version: int) -> AccessListDelta:
            entry = access[site]
            base = {"site": site, "version": version + 1, "base": version}
            if entry.member is None:
                cards = forgotten | {c.hash for c in entry.cards}
                return AccessListDelta(
                    **base, removed_members=[member], removed_cards=sorted(cards)
                )
            kept = {c.hash for c in entry.cards}
            return AccessListDelta(
                **base,
                plans=entry.plans,
                members=[entry.member],
                cards=entry.cards,
                removed_cards=sorted(forgotten - kept),
            )

        return self._publish_deltas(sites, delta)

    def _publish_deltas(
        self, sites: Iterable[str], make: Callable[[str, int], AccessListDelta]
    ) -> list[Published]:
        """Send each site the delta ``make(site, its version)`` as one recorded batch.

        A site without a list, or with a version the broker never took, gets a full list
        instead (its devices may not have the base).
        """
        with self.engine.connect() as conn:
            versions = newest_versions(conn)
        now = datetime.now(UTC)
        deltas, full = [], set()
        for site in sorted(sites):
            if site not in versions or site in self._unsent:
                full.add(site)
            else:
                deltas.append(make(site, versions[site]))
        sent = self.publish_sites(full) if full else []
        sealed = [(delta, self._seal(delta, now)) for delta in deltas]
        self._record([(d.site, d.version, "delta", d.base, d, len(m)) for d, m in sealed], now)
        for delta, message in sealed:
            cached = self._current.pop(delta.site, None)
            if cached is not None and cached.version == delta.base:
                self._remember(patch(cached, delta))
            self._unsent[delta.site] = (delta.version, message)
        try:
            self._publish_many([(protocol.acl_topic(d.site), m, True) for d, m in sealed])
            for delta, _ in sealed:
                self._unsent.pop(delta.site, None)
        except (TimeoutError, RuntimeError, ValueError) as exc:
            log.warning("%d deltas not all sent yet (%s); retrying", len(sealed), exc)
        return sent + [Published(d.site, d.version, "delta", len(m)) for d, m in sealed]

    def _record(self, rows: list[tuple], now: datetime) -> None:
        """Store versions before they are sent: a version number names exactly one list.

        Each row is (site, version, kind, base, body, message size); all in one transaction.
        """
        if not rows:
            return
        with self.engine.begin() as conn:
            conn.execute(
                db.acl_versions.insert(),
                [
                    {
                        "site": site,
                        "version": version,
                        "kind": kind,
                        "base": base,
                        "body": zlib.compress(body.model_dump_json(exclude_none=True).encode(), 6),
                        "message_bytes": size,
                        "published_at": now,
                    }
                    for site, version, kind, base, body, size in rows
                ],
            )

    def snapshot_message(self, site: str) -> bytes | None:
        """The sealed full list of ``site`` at its current version, for a device that lags."""
        doc = self.current(site)
        return None if doc is None else self._seal(doc, datetime.now(UTC))

    def catch_up(
        self, site: str, device: str, device_version: int | None, delay: float = CATCH_UP_DELAY
    ) -> bool:
        """Send a device that reports an older list than the newest a snapshot of its own.

        A device publishes its state as it connects, before the retained list reaches it: so
        look again after ``delay`` at the state it reports then, and send only if it still
        lags (the retained delta did not fit, or the broker lost it). One look per device is
        pending at a time. Returns whether a look is due.
        """
        if self._newest(site) <= (device_version or 0):
            return False
        if delay <= 0:
            self._catch_up_now(site, device)
            return True
        with self._lock:
            pending = self._timers.get((site, device))
            if pending is not None and pending.is_alive():
                return True
            timer = threading.Timer(delay, self._catch_up_now, (site, device))
            timer.daemon = True
            self._timers[(site, device)] = timer
        timer.start()
        return True

    def close(self) -> None:
        """Cancel the second looks still pending (the store and broker are going away)."""
        with self._lock:
            for timer in self._timers.values():
                timer.cancel()
            self._timers.clear()

    def _newest(self, site: str) -> int:
        with self.engine.connect() as conn:
            newest = conn.scalar(
                select(func.max(db.acl_versions.c.version)).where(db.acl_versions.c.site == site)
            )
        return newest or 0

    def _catch_up_now(self, site: str, device: str) -> None:
        try:
            with self._lock:  # the list cache is shared with publishing
                self._send_catch_up(site, device)
        except Exception:  # a timer thread: log, the device's next state schedules another
            log.exception("could not look at %s.%s again", site, device)
        finally:
            with self._lock:
                self._timers.pop((site, device), None)

    def _send_catch_up(self, site: str, device: str) -> None:
        s = db.device_states.c
        with self.engine.connect() as conn:
            version = conn.scalar(select(s.acl_version).where(s.site == site, s.device == device))
        newest = self._newest(site)
        if newest <= (version or 0):
            return
        cached = self._current.get(site)
        if cached is not None and cached.version < newest:
            del self._current[site]  # another process published since: rebuild from the store
        message = self.snapshot_message(site)
        if message is None:
            return
        try:
            self._publish(protocol.command_topic(site, device, "acl_snapshot"), message, False)
        except (TimeoutError, RuntimeError, ValueError) as exc:
            log.warning("snapshot for %s.%s not sent (%s)", site, device, exc)
            return
        log.info("sent %s.%s a snapshot: it reported version %s", site, device, version)

    def _send(self, doc: AccessList, delta: AccessListDelta | None) -> Published:
        """Record the version, then publish it: a version number names exactly one list.

        The row is written first, so two publishers racing for a site's next version fail on
        its primary key instead of sending two different lists under one number.
        """
        now = datetime.now(UTC)
        message, kind = b"", "snapshot"
        body: AccessList | AccessListDelta = doc
        if doc.site in self._unsent:
            delta = None  # an earlier version never went out: devices need the whole list
        if delta is not None:
            message, kind, body = self._seal(delta, now), "delta", delta
            # A delta touching a good part of the list may be bigger than the list: compare.
            if 3 * _rows(delta) > _rows(doc):
                snapshot = self._seal(doc, now)
                if len(snapshot) <= len(message):
                    message, kind, body = snapshot, "snapshot", doc
        if kind == "snapshot" and not message:
            message = self._seal(doc, now)
        base = delta.base if kind == "delta" and delta else None
        self._record([(doc.site, doc.version, kind, base, body, len(message))], now)
        self._remember(doc)
        self._unsent[doc.site] = (doc.version, message)
        self._try_publish(doc.site)
        return Published(doc.site, doc.version, kind, len(message))

    def _try_publish(self, site: str) -> bool:
        version, message = self._unsent[site]
        try:
            self._publish(protocol.acl_topic(site), message, True)
        except (TimeoutError, RuntimeError, ValueError) as exc:
            log.warning("version %s of %s not sent yet (%s); retrying", version, site, exc)
            return False
        self._unsent.pop(site, None)
        return True

    @_locked
    def flush_unsent(self) -> int:
        """Send the lists that could not be sent (the broker was away); returns how many are
        still waiting. Only a site's newest version is ever kept, so nothing older is sent."""
        for site in list(self._unsent):
            self._try_publish(site)
        return len(self._unsent)

    def _seal(self, doc: AccessList | AccessListDelta, now: datetime) -> bytes:
        return seal(self.key, protocol.acl_header(doc, now), protocol.acl_body(doc))


def _rows(doc: AccessList | AccessListDelta) -> int:
    count = len(doc.plans) + len(doc.members) + len(doc.cards)
    if isinstance(doc, AccessListDelta):
        count += len(doc.removed_plans) + len(doc.removed_members) + len(doc.removed_cards)
    return count
