"""What the hub sends a device: signed access lists and signed commands, checked before use.

A message that fails any check changes nothing. Refused access lists are recorded as
``acl.refused`` events (and so reach the hub); refused commands are answered with the reason.
"""

from __future__ import annotations

import json
import logging
import queue
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
)
from edge.agent.store import EdgeStore
from hafen.acl import AccessListDelta
from hafen.protocol import AclRefused, read_acl_body
from hafen.signing import BadSignedMessage, open_sealed

log = logging.getLogger(__name__)

#: A command older (or further in the future) than this is refused as a replay.
COMMAND_MAX_AGE = timedelta(minutes=2)


class AclUpdater:
    """Applies signed access lists in its own thread, on its own store connection."""

    def __init__(
        self,
        store: EdgeStore,
        site: str,
        tz: ZoneInfo,
        key: bytes,
        trusted: list[Ed25519PublicKey],
        on_change: Callable[[], None],
    ) -> None:
        self.store = store
        self.site = site
        self.tz = tz
        self.key = key
        self.trusted = trusted
        self._on_change = on_change
        self._inbox: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="acl-updater", daemon=True)
        #: The applied version, kept in memory so paho's callbacks can report it without I/O.
        self.version = applied_version(store)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._inbox.put(None)
        self._thread.join(30)

    def submit(self, payload: bytes) -> None:
        """Queue a received message; called from paho's thread."""
        self._inbox.put(payload)

    def _run(self) -> None:
        while (payload := self._inbox.get()) is not None:
            try:
                self.handle(payload)
            except Exception:
                log.exception("applying an access list failed")

    def handle(self, payload: bytes) -> int | None:
        """Verify and apply one message; returns the applied version, or None if not applied."""
        version = None
        try:
            message = open_sealed(payload, self.trusted)
            header = message.header
            if header.get("type") != "acl":
                raise AccessListRefused(f"not an access list: {header.get('type')!r}")
            version = header.get("version")
            if not isinstance(version, int):
                raise AccessListRefused("the header has no version")
            if version == applied_version(self.store) and header.get("site") == self.site:
                return None  # the retained list again, after a reconnect: nothing to do
            check_version(self.store, self.site, str(header.get("site")), version)
            doc = read_acl_body(header, message.body)
            if isinstance(doc, AccessListDelta):
                apply_delta(self.store, doc, self.site, self.tz)
            else:
                apply_snapshot(self.store, doc, self.site, self.tz, self.key)
        except (BadSignedMessage, AccessListRefused, ValueError) as exc:
            self._refuse(str(exc), version if isinstance(version, int) else None)
            return None
        log.info("access list version %s applied", version)
        self.version = version
        self._on_change()
        return version

    def _refuse(self, reason: str, version: int | None) -> None:
        current = applied_version(self.store)
        log.warning("access list refused (version %s, applied %s): %s", version, current, reason)
        event = AclRefused(reason=reason[:500], version=version, applied_version=current)
        self.store.record_event(event, datetime.now(UTC))
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
            with self.store.write() as conn:
                self.store.set_meta(conn, self.SEEN_KEY, kept)
        return Command(command_id, name, args if isinstance(args, dict) else {})
