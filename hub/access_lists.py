"""Access lists at the hub: compile who may enter each site, version, sign and publish them.

Each site's list has its own version sequence. A change goes out as a delta from the version
the site has, or as a snapshot when that is smaller; both are retained on the site's topic so a
device that reconnects gets the newest. A device that is further behind gets a snapshot of its
own (``cmd/acl_snapshot``) when its state shows the lag (hub.acl_catch_up, rate-limited), and
hub.list_watch sends the newest list again until every door's own state shows it.
"""

from __future__ import annotations

import logging
import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Connection, Engine

from hafen import protocol
from hafen.acl import AccessList, AccessListDelta, diff, patch
from hafen.signing import seal
from hub import acl_history
from hub.access_changes import Change, entries_delta
from hub.access_compiler import AccessCompiler, newest_versions
from hub.acl_catch_up import CATCH_UP_DELAY, CatchUpLimits, CatchUps
from hub.acl_encoding import SharedEncoder
from hub.acl_locks import locked, recording
from hub.group_commit import GroupCommit

log = logging.getLogger(__name__)

#: Sites whose current list the publisher keeps in memory (the rest are rebuilt on demand).
CACHED_SITES = 64
#: publish(topic, payload, retain) -> None, returning once the broker has the message.
Publish = Callable[[str, bytes, bool], None]
#: The same for a batch, sent without waiting in between.
PublishMany = Callable[[list[tuple[str, bytes, bool]]], None]


@dataclass(frozen=True)
class MemberChange:
    """One member's entry to send to some sites, with cards the doors must forget."""

    member: str
    sites: frozenset[str]
    forgotten_cards: frozenset[str]


@dataclass(frozen=True)
class Published:
    """One access-list message that went out."""

    site: str
    version: int
    kind: str
    size: int


class AclPublisher:
    """Versions, signs and publishes access lists; remembers what each site was sent."""

    def __init__(
        self,
        engine: Engine,
        key: Ed25519PrivateKey,
        publish: Publish,
        publish_many: PublishMany | None = None,
        catch_up_limits: CatchUpLimits | None = None,
    ) -> None:
        self.engine = engine
        self.key = key
        self._publish = publish
        self._publish_many = publish_many or self._publish_each
        self.compiler = AccessCompiler(engine)
        self._current: OrderedDict[str, AccessList] = OrderedDict()
        self._lock = threading.RLock()  # one version at a time per publisher
        self._member_changes = GroupCommit(self._lock, self._publish_members)
        #: Per site, the newest recorded version whose message the broker has not taken yet.
        self._unsent: dict[str, tuple[int, bytes]] = {}
        #: Second looks at devices whose state shows them behind, within bounds.
        self.catch_ups = CatchUps(self, catch_up_limits or CatchUpLimits())

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
        doc = acl_history.rebuild(self.engine, site)
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
    @recording
    def publish_site(self, site: str) -> Published | None:
        """Compile ``site`` afresh and send whatever changed; None if nothing did."""
        previous = self._fresh(site)
        version = previous.version + 1 if previous else 1
        fresh = self.compiler.compile(site, version)
        if previous is None:
            return self._send(fresh, None)
        delta = diff(previous, fresh)
        if delta.is_empty():
            return None
        return self._send(fresh, delta)

    @recording
    def publish_sites(self, sites: set[str] | list[str]) -> list[Published]:
        """Compile several sites in one pass and send each one's changes (a plan change)."""
        previous = {site: self._fresh(site) for site in sorted(sites)}
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

    def publish_member(
        self, member: str, sites: Iterable[str], forgotten_cards: Iterable[str] = ()
    ) -> list[Published]:
        """One member changed (grant, card, block, booking, erasure): send each of ``sites``
        that member's entry as a delta, or their removal where they no longer have access.

        Only the member's rows are read, so this is fast for hundreds of sites. Changes that
        arrive while one is being sent go out together in the next pass (hub.group_commit):
        one compile, one recorded version and one message per site for all of them.
        ``forgotten_cards``: hashes of cards deleted from the hub that doors must forget too.
        Returns what went out to ``sites``.
        """
        return self._member_changes.submit(
            MemberChange(member, frozenset(sites), frozenset(forgotten_cards))
        )

    @recording
    def _publish_members(self, changes: list[MemberChange]) -> list[list[Published]]:
        """Send the entries of every member in ``changes`` as one delta per site touched."""
        wanted: dict[str, set[str]] = {}
        forgotten: dict[str, set[str]] = {}
        for change in changes:
            wanted.setdefault(change.member, set()).update(change.sites)
            for site in change.sites:
                forgotten.setdefault(site, set()).update(change.forgotten_cards)
        entries = self.compiler.compile_entries({m: frozenset(s) for m, s in wanted.items()})
        sent = self._publish_deltas(
            forgotten,
            lambda site, version: entries_delta(
                site, version, entries[site], forgotten_cards=forgotten[site]
            ),
        )
        return [[p for p in sent if p.site in change.sites] for change in changes]

    @recording
    def publish_change(self, describe: Callable[[Connection], Change]) -> list[Published]:
        """A plan or a company changed: send each site it touched one delta with the new
        entries of just the members it touched there, and the plan rows that changed.

        ``describe`` reads what changed (hub.access_changes) under the publisher's lock, as
        the entries are compiled under it: a change that committed meanwhile is in both, and
        its own call, which comes after, sends the same again. No site is recompiled.
        """
        with self.engine.connect() as conn:
            change = describe(conn)
        entries = self.compiler.compile_entries(change.entries)
        return self._publish_deltas(
            change.sites(),
            lambda site, version: entries_delta(
                site, version, entries.get(site, []), change.plans.get(site, ())
            ),
        )

    def _publish_deltas(
        self, sites: Iterable[str], make: Callable[[str, int], AccessListDelta | None]
    ) -> list[Published]:
        """Send each site the delta ``make(site, its version)`` as one recorded batch (None:
        nothing changed there, nothing is sent).

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
            elif (delta := make(site, versions[site])) is not None:
                deltas.append(delta)
        sent = self.publish_sites(full) if full else []
        encoder = SharedEncoder()  # the sites' deltas share most entries: encode them once
        sealed = [(delta, *self._sealed(delta, now, encoder.body(delta))) for delta in deltas]
        acl_history.record(
            self.engine,
            [(d.site, d.version, "delta", d.base, b, len(m)) for d, m, b in sealed],
            now,
        )
        for delta, message, _ in sealed:
            cached = self._current.pop(delta.site, None)
            if cached is not None and cached.version == delta.base:
                self._remember(patch(cached, delta))
            self._unsent[delta.site] = (delta.version, message)
        try:
            self._publish_many([(protocol.acl_topic(d.site), m, True) for d, m, _ in sealed])
            for delta, _, _ in sealed:
                self._unsent.pop(delta.site, None)
        except (TimeoutError, RuntimeError, ValueError) as exc:
            log.warning("%d deltas not all sent yet (%s); retrying", len(sealed), exc)
        return sent + [Published(d.site, d.version, "delta", len(m)) for d, m, _ in sealed]

    def snapshot_message(self, site: str) -> bytes | None:
        """The sealed full list of ``site`` at its newest version, for a device that lags."""
        doc = self._fresh(site)
        return None if doc is None else self._seal(doc, datetime.now(UTC))

    # -- what the hub sends on its own: catch-up snapshots and re-sent lists ------------------
    def catch_up(
        self, site: str, device: str, device_version: int | None, delay: float = CATCH_UP_DELAY
    ) -> bool:
        """Send a device that reports an older list than the newest a snapshot of its own,
        within the limits of ``catch_up_limits`` (see hub.acl_catch_up). Returns whether a
        look is due."""
        return self.catch_ups.request(site, device, device_version, delay)

    def close(self) -> None:
        """Cancel the second looks still pending (the store and broker are going away)."""
        self.catch_ups.close()

    def newest(self, site: str) -> int:
        """The newest version recorded for ``site`` by any hub process (0: none)."""
        return acl_history.newest_version(self.engine, site)

    @locked
    def send_snapshot(self, site: str, device: str) -> bool:
        """Send ``device`` the site's newest full list on its ``cmd/acl_snapshot``: for a door
        that the retained list cannot bring up to date. Returns whether the broker took it."""
        message = self.snapshot_message(site)
        if message is None:
            return False
        try:
            self._publish(protocol.command_topic(site, device, "acl_snapshot"), message, False)
        except (TimeoutError, RuntimeError, ValueError) as exc:
            log.warning("snapshot for %s.%s not sent (%s)", site, device, exc)
            return False
        return True

    @locked
    def resend_newest(self, site: str) -> int | None:
        """Publish the site's newest recorded list again, retained, as it was first sent (a
        delta stays a delta): a third party on the broker may have put an older signed list
        in its place. Returns the version the broker took, None if none was sent."""
        if site in self._unsent:  # never sent at all: send it now, as the retry would
            version = self._unsent[site][0]
            return version if self._try_publish(site) else None
        row = acl_history.newest_row(self.engine, site)
        if row is None:
            return None
        doc: AccessList | AccessListDelta | None
        if row.kind == "delta":
            doc = AccessListDelta.model_validate_json(zlib.decompress(row.body))
        else:
            doc = self._fresh(site)
        if doc is None or doc.version != row.version:
            return None  # another process published meanwhile: the next look sends that one
        try:
            self._publish(protocol.acl_topic(site), self._seal(doc, datetime.now(UTC)), True)
        except (TimeoutError, RuntimeError, ValueError) as exc:
            log.warning("version %s of %s not sent again (%s)", row.version, site, exc)
            return None
        return int(row.version)

    def _fresh(self, site: str) -> AccessList | None:
        """The newest list of ``site``, rebuilt if another process published since it was
        cached (the ingest workers and a second hub share the store)."""
        cached = self._current.get(site)
        if cached is not None and cached.version < self.newest(site):
            del self._current[site]
        return self.current(site)

    def _send(self, doc: AccessList, delta: AccessListDelta | None) -> Published:
        """Record the version, then publish it: a version number names exactly one list.

        The row is written first, so two publishers racing for a site's next version fail on
        its primary key instead of sending two different lists under one number.
        """
        now = datetime.now(UTC)
        message, kind, body = b"", "snapshot", b""
        if doc.site in self._unsent:
            delta = None  # an earlier version never went out: devices need the whole list
        if delta is not None:
            message, body = self._sealed(delta, now)
            kind = "delta"
            # A delta touching a good part of the list may be bigger than the list: compare.
            if 3 * _rows(delta) > _rows(doc):
                snapshot, whole = self._sealed(doc, now)
                if len(snapshot) <= len(message):
                    message, kind, body = snapshot, "snapshot", whole
        if kind == "snapshot" and not message:
            message, body = self._sealed(doc, now)
        base = delta.base if kind == "delta" and delta else None
        acl_history.record(
            self.engine, [(doc.site, doc.version, kind, base, body, len(message))], now
        )
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

    @locked
    def flush_unsent(self) -> int:
        """Send the lists that could not be sent (the broker was away); returns how many are
        still waiting. Only a site's newest version is ever kept, so nothing older is sent."""
        for site in list(self._unsent):
            self._try_publish(site)
        return len(self._unsent)

    def _seal(self, doc: AccessList | AccessListDelta, now: datetime) -> bytes:
        return self._sealed(doc, now)[0]

    def _sealed(
        self, doc: AccessList | AccessListDelta, now: datetime, body: bytes | None = None
    ) -> tuple[bytes, bytes]:
        """The signed message and its compressed body (what ``acl_versions`` keeps);
        ``body``: already made."""
        body = protocol.acl_body(doc) if body is None else body
        return seal(self.key, protocol.acl_header(doc, now), body), body


def _rows(doc: AccessList | AccessListDelta) -> int:
    count = len(doc.plans) + len(doc.members) + len(doc.cards)
    if isinstance(doc, AccessListDelta):
        count += len(doc.removed_plans) + len(doc.removed_members) + len(doc.removed_cards)
    return count
