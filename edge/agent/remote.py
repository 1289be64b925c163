"""What the hub sends a device: signed access lists and signed commands, checked before use.

A message that fails any check changes nothing. Whatever arrives, what waits is bounded: the
newest list of each source (edge.agent.acl_mailbox) and a few commands (``CommandGate``).
Refused access lists are counted and reported as ``acl.refused`` events at a bounded rate;
refused commands are answered with the reason.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edge.agent.access_list import (
    AccessListRefused,
    applied_version,
    apply_delta,
    apply_snapshot,
    check_version,
    collector_paused,
    vouch_for_applied,
)
from edge.agent.acl_mailbox import AclMailbox, Pending, RefusalTally, Source
from edge.agent.faults import FaultBoard
from edge.agent.pacing import Pacer
from edge.agent.store import EdgeStore
from hafen.acl import AccessListDelta
from hafen.protocol import MAX_DEVICE_MESSAGE_BYTES, MAX_PACKET_BYTES, AclRefused, read_acl_body
from hafen.signing import BadSignedMessage, open_sealed, public_key_text

log = logging.getLogger(__name__)

#: A command older (or further in the future) than this is refused as a replay.
COMMAND_MAX_AGE = timedelta(minutes=2)
#: The largest list message taken: a bigger one is refused before it is verified or inflated.
MAX_LIST_BYTES = MAX_PACKET_BYTES
#: At most one ``acl.refused`` event per this many seconds (the first one at once).
REPORT_EVERY = 300.0
#: Waits between attempts to write a list the store refused (disk full, I/O error): they
#: double from the first to the last, so a block is enforced within RETRY_MAX of space coming back.
RETRY_FIRST, RETRY_MAX = 1.0, 30.0
#: While a door is behind (it saw a newer version than it could apply), it publishes its state
#: so the hub sends a snapshot: at once, then again after 30 s, 60 s ... up to 10 minutes.
ASK_FIRST, ASK_MAX = 30.0, 600.0
#: The fault board's component for lists that cannot be written.
FAULT = "acl"


class AclUpdater:
    """Applies signed access lists in its own thread, on its own store connection.

    ``on_change`` runs after a list was applied and when the door is behind (both: publish the
    state); ``on_event`` after a refusal report was written to the outbox (wake the sender).
    """

    def __init__(
        self,
        store: EdgeStore,
        site: str,
        tz: ZoneInfo,
        key: bytes,
        trusted: list[Ed25519PublicKey],
        on_change: Callable[[], None],
        on_event: Callable[[], None] | None = None,
        faults: FaultBoard | None = None,
        report_every: float = REPORT_EVERY,
    ) -> None:
        self.store = store
        self.site = site
        self.tz = tz
        self.key = key
        self.trusted = trusted
        self._on_change = on_change
        self._on_event = on_event or (lambda: None)
        self.faults = faults or FaultBoard()
        self.mailbox = AclMailbox()
        self.refusals = RefusalTally(report_every)
        self._ask = Pacer(ASK_FIRST, ASK_MAX)
        self._log = Pacer(60.0)
        self._thread = threading.Thread(target=self._run, name="acl-updater", daemon=True)
        #: The applied version, kept in memory so paho's callbacks can report it without I/O.
        self.version = applied_version(store)
        #: The newest version of this site's list the door has seen signed (it may be behind).
        self.seen_version = self.version
        #: Set once a list of this site, not older than the applied one, passed its signature
        #: check in this process: the health gate of a new version asks for it.
        self.verified = threading.Event()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.mailbox.close()
        self._thread.join(30)

    def submit(self, payload: bytes, source: Source = Source.RETAINED) -> None:
        """A list arrived (called from paho's thread): it waits, unless it is too large."""
        if len(payload) > MAX_LIST_BYTES:
            # Not kept, not verified, not inflated: only counted (and reported by the thread).
            self._refuse(f"the message is {len(payload)} bytes, over {MAX_LIST_BYTES}", None)
            self.mailbox.wake()
            return
        self.mailbox.put(payload, source)

    @property
    def behind(self) -> bool:
        """The door saw a newer signed version than it could apply."""
        return self.seen_version > self.version

    def _run(self) -> None:
        while not self.mailbox.closed:
            pending = self.mailbox.take(timeout=self._idle_wait())
            try:
                if pending is not None:
                    with collector_paused():
                        self._attempt(pending)
                self._report_refusals()
                self._ask_if_behind()
            except Exception:
                log.exception("handling an access list failed")

    def _idle_wait(self) -> float:
        """How long to wait for a list before there is something else to do."""
        waits = [60.0]
        if (report := self.refusals.wait()) is not None:
            waits.append(report)
        if self.behind:
            waits.append(self._ask.wait())
        return max(0.0, min(waits))

    def _attempt(self, pending: Pending) -> None:
        try:
            self.handle(pending.payload)
        except sqlite3.Error as exc:
            delay = min(RETRY_FIRST * 2**pending.attempts, RETRY_MAX)
            kept = self.mailbox.retry(pending, delay)
            log.warning(
                "could not write an access list (%s); %s",
                exc,
                f"trying again in {delay:.0f} s" if kept else "a newer one arrived",
            )
            self.faults.set(FAULT, f"cannot write the access list: {exc}")

    def handle(self, payload: bytes) -> int | None:
        """Verify and apply one message; returns the applied version, or None if not applied.

        Raises sqlite3.Error if the store could not be written: the list may be tried again.
        """
        version = None
        try:
            message = open_sealed(payload, self.trusted)
            header = message.header
            if header.get("type") != "acl":
                raise AccessListRefused(f"not an access list: {header.get('type')!r}")
            version = header.get("version")
            if not isinstance(version, int):
                raise AccessListRefused("the header has no version")
            signer = public_key_text(message.signer) if message.signer else ""
            if header.get("site") == self.site:
                self.seen_version = max(self.seen_version, version)
                if version >= self.version:
                    self.verified.set()
                if version == applied_version(self.store):
                    # The retained list again, after a reconnect: nothing to apply, but it
                    # vouches for a list applied before doors kept their lists' signers.
                    vouch_for_applied(self.store, signer)
                    return None
            check_version(self.store, self.site, str(header.get("site")), version)
            doc = read_acl_body(header, message.body)
            if isinstance(doc, AccessListDelta):
                apply_delta(self.store, doc, self.site, self.tz, signer)
            else:
                apply_snapshot(self.store, doc, self.site, self.tz, self.key, signer)
        except (BadSignedMessage, AccessListRefused, ValueError, sqlite3.IntegrityError) as exc:
            self._refuse(str(exc), version if isinstance(version, int) else None)
            return None
        log.info("access list version %s applied", version)
        self.version = version
        self.faults.set(FAULT, None)
        if not self.behind:
            self._ask.reset()
        self._on_change()
        return version

    def _refuse(self, reason: str, version: int | None) -> None:
        """Count a refused list (thread-safe); the updater's thread reports the count."""
        self.refusals.add(reason[:500], version)
        # Logged at a bounded rate too: a flood of forged lists must not fill the SD card.
        level = logging.WARNING if self._log.ready() else logging.DEBUG
        log.log(
            level,
            "access list refused (version %s, applied %s): %s (%d refused since start)",
            version,
            self.version,
            reason,
            self.refusals.total,
        )

    def _report_refusals(self) -> None:
        """Write the refusals counted since the last report, if one may be written now."""
        report = self.refusals.due()
        if report is None:
            return
        event = AclRefused(
            reason=report.reason,
            version=report.version,
            applied_version=self.version,
            count=min(report.count, 2**31 - 1),
        )
        try:
            self.store.record_event(event, datetime.now(UTC))
        except sqlite3.Error as exc:
            log.warning("could not record %d refused access lists: %s", report.count, exc)
            self.refusals.unreported(report)
            return
        self._on_event()

    def _ask_if_behind(self) -> None:
        """A door that is behind publishes its state (the hub answers it with a snapshot)."""
        if self.behind and self._ask.ready():
            log.info(
                "saw access list version %s, applied %s: asking the hub for a snapshot",
                self.seen_version,
                self.version,
            )
            self._on_change()


@dataclass(frozen=True)
class Command:
    """A verified command for this device."""

    id: str
    name: str
    #: Decoded JSON: the handler of each command checks the types of the arguments it reads.
    args: dict[str, Any]


class CommandRefused(Exception):
    """A command failed a check; the message says which."""


class CommandVerifier:
    """Checks signature, addressee, age and uniqueness of commands.

    The ids carried out within the last few minutes are kept in the ``store`` (when given), so
    a captured unlock cannot be replayed by restarting the agent within its age limit.
    """

    SEEN_KEY = "commands_seen"
    #: Set by a store recovery that lost SEEN_KEY (edge.agent.recovery): older commands are
    #: refused, as any of them may have been carried out already.
    NOT_BEFORE_KEY = "commands_not_before"

    def __init__(
        self,
        site: str,
        device: str,
        trusted: list[Ed25519PublicKey],
        store: EdgeStore | None = None,
    ) -> None:
        self.site = site
        self.device = device
        self.trusted = trusted
        self.store = store
        self._seen: dict[str, datetime] = {}
        self._not_before: datetime | None = None
        if store is not None and (kept := store.get_meta(self.SEEN_KEY)):
            self._seen = {k: datetime.fromisoformat(t) for k, t in json.loads(kept).items()}
        if store is not None and (not_before := store.get_meta(self.NOT_BEFORE_KEY)):
            self._not_before = datetime.fromisoformat(not_before)

    def verify(self, name: str, payload: bytes, now: datetime) -> Command:
        """Return the command if it passes every check; raise CommandRefused if not.

        The hub's ``ack`` is retained and only ever moves a mark forward, so a stale or repeated
        one is harmless: it skips the age and replay checks, not the signature.
        """
        try:
            header = open_sealed(payload, self.trusted).header
        except BadSignedMessage as exc:
            raise CommandRefused(str(exc)) from None
        if header.get("type") != "command" or header.get("name") != name:
            raise CommandRefused("not a command of that name")
        if (header.get("site"), header.get("device")) != (self.site, self.device):
            raise CommandRefused("the command is for another device")
        args = header.get("args") or {}
        if name == "ack":
            return Command(str(header.get("id", "")), name, args if isinstance(args, dict) else {})
        try:
            issued = datetime.fromisoformat(str(header.get("issued_at")))
        except ValueError:
            raise CommandRefused("the command has no valid issued_at") from None
        if issued.tzinfo is None or abs(now - issued) > COMMAND_MAX_AGE:
            raise CommandRefused("the command is too old or from the future")
        if self._not_before is not None and issued <= self._not_before:
            raise CommandRefused("the command is older than the door's store")
        command_id = str(header.get("id", ""))
        self._seen = {k: t for k, t in self._seen.items() if now - t <= COMMAND_MAX_AGE * 2}
        if not command_id or command_id in self._seen:
            raise CommandRefused("the command was already carried out")
        self._seen[command_id] = now
        if self.store is not None:
            kept = json.dumps({k: t.isoformat() for k, t in self._seen.items()})
            try:
                with self.store.write() as conn:
                    self.store.set_meta(conn, self.SEEN_KEY, kept)
            except sqlite3.Error as exc:
                # Carried out unrecorded, it could be replayed after a restart: refused, with
                # an answer, and not marked as carried out (it may be sent again later).
                del self._seen[command_id]
                raise CommandRefused(f"the door cannot record commands now: {exc}") from None
        return Command(command_id, name, args if isinstance(args, dict) else {})


#: Commands from the network that may wait for the agent's loop at once; more are dropped.
MAX_PENDING_COMMANDS = 32
#: The largest command taken (its header is all of it; lists come as ``acl_snapshot``).
MAX_COMMAND_BYTES = MAX_DEVICE_MESSAGE_BYTES


class CommandGate:
    """Bounds the commands waiting for the agent's loop, whatever the broker delivers.

    Anyone on the broker can publish on a door's command topics, faster than the loop verifies
    them. A command larger than any the hub sends is dropped unread; beyond ``limit`` waiting,
    more are dropped until the loop catches up. Both are counted (and logged at a bounded
    rate); the hub's commands are few, and the ones that matter are sent again (the retained
    ``ack``) or answered (an ``unlock`` that got no reply). Thread-safe.
    """

    def __init__(
        self, limit: int = MAX_PENDING_COMMANDS, max_bytes: int = MAX_COMMAND_BYTES
    ) -> None:
        self.limit = limit
        self.max_bytes = max_bytes
        self.dropped = 0
        self._waiting = 0
        self._lock = threading.Lock()
        self._log = Pacer(60.0)

    def admit(self, name: str, payload: bytes) -> bool:
        """Whether a command that arrived may wait for the loop (then call ``done`` after)."""
        with self._lock:
            if len(payload) <= self.max_bytes and self._waiting < self.limit:
                self._waiting += 1
                return True
            self.dropped += 1
            dropped = self.dropped
        if self._log.ready():
            log.warning(
                "dropped command %s (%d bytes; %d waiting): %d dropped since start",
                name[:40],
                len(payload),
                self._waiting,
                dropped,
            )
        return False

    def done(self) -> None:
        """The loop has taken one command."""
        with self._lock:
            self._waiting = max(0, self._waiting - 1)


def command_router(
    updater: AclUpdater, gate: CommandGate, to_loop: Callable[[str, bytes], None]
) -> Callable[[str, bytes], None]:
    """What paho's thread does with a command: a snapshot (a sealed list, checked there) goes
    to the updater's mailbox; any other waits for the agent's loop if the gate admits it."""

    def route(name: str, payload: bytes) -> None:
        if name == "acl_snapshot":
            updater.submit(payload, Source.SNAPSHOT)
        elif gate.admit(name, payload):
            to_loop(name, payload)

    return route
