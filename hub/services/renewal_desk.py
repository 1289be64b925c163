"""The hub's end of certificate renewal: doors' requests in, sealed certificates out.

``hafen hub serve`` subscribes to every door's ``.../renew`` on its publisher's connection and
hands each message to ``RenewalDesk.submit`` (paho's thread: it only sorts and drops). Only a
door can publish on its own topic (its role at the broker), but what it sends is still read as
untrusted input, and a door that asks in a loop must cost the hub next to nothing:

- a message over the protocol's size, or on a topic that names no device, is dropped unread;
- each device's requests are looked at once per ``look_every`` (30 s): the others are dropped
  on arrival, counted, at the price of a dictionary lookup; the newest waiting request of a
  device replaces an older one, and at most ``max_waiting`` devices wait at once;
- the desk's thread looks at ``burst`` requests at once, then ``per_second``, network-wide;
- a request that is not one (no JSON, no certificate request, a bad signature, another kind
  of key) is refused, counted and logged without its content;
- hub.services.renewal decides (enrolled, not revoked, once per device per hour) and records.

The answer is a sealed ``certificate`` command on the door's command topic, checked by the
door like every command. If it does not arrive (the door dropped its connection just then),
the door asks again for the same key, and is sent the same certificate again within the hour
rather than a second one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError
from sqlalchemy import Engine

from hafen import protocol
from hafen.protocol import RenewalRequest
from hub.commands import command_message
from hub.device_identity import DeviceAuthority
from hub.pki import RequestRefused, requested_key
from hub.rate_limits import Clock, Spacing, TokenBucket
from hub.services import renewal
from hub.services.errors import ServiceError

log = logging.getLogger(__name__)

#: send(topic, payload): publish a command at QoS 1, returning once the broker has it.
Send = Callable[[str, bytes], None]
#: The largest renewal request read: a P-256 request in JSON is well under 1 KiB.
MAX_REQUEST_BYTES = protocol.MAX_PEM_CHARS + 256
Device = tuple[str, str]


class MessageLike(Protocol):
    """An MQTT message as paho gives it."""

    @property
    def topic(self) -> str: ...

    @property
    def payload(self) -> bytes | bytearray: ...


@dataclass(frozen=True)
class RenewalLimits:
    """How much renewal the hub does, whatever the doors send."""

    #: At most one certificate per device in this long (hub.services.renewal).
    window: timedelta = renewal.RENEWAL_WINDOW
    #: A device's requests are looked at once per this many seconds; the rest are dropped.
    look_every: float = 30.0
    #: Requests looked at, network-wide: this many at once, then this many per second.
    burst: int = 10
    per_second: float = 1.0
    #: Devices whose request may wait to be looked at; beyond, requests are dropped.
    max_waiting: int = 1000

    def __post_init__(self) -> None:
        for name in ("look_every", "burst", "per_second", "max_waiting"):
            if not getattr(self, name) > 0:
                raise ValueError(f"renewal limit {name} must be above 0")


@dataclass(frozen=True)
class _Issued:
    """A certificate the desk issued, kept for the window to answer a repeated request."""

    at: float
    key: bytes
    pem: str


class RenewalDesk:
    """Takes doors' renewal requests and answers them (see the module). Thread-safe."""

    def __init__(
        self,
        engine: Engine,
        authority: DeviceAuthority,
        signing_key: Ed25519PrivateKey,
        send: Send,
        limits: RenewalLimits | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self.engine = engine
        self.authority = authority
        self.signing_key = signing_key
        self._send = send
        self.limits = limits or RenewalLimits()
        self._clock = clock
        #: What happened to the requests, by outcome (received, dropped, refused, issued ...).
        self.counts: Counter[str] = Counter()
        self._waiting: OrderedDict[Device, bytes] = OrderedDict()
        self._spacing = Spacing(self.limits.look_every, max_keys=100_000, clock=clock)
        self._bucket = TokenBucket(self.limits.per_second, self.limits.burst, clock)
        self._issued: OrderedDict[Device, _Issued] = OrderedDict()
        self._lock = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="renewal-desk", daemon=True)
        self._log_at = -60.0

    @staticmethod
    def subscriptions() -> list[tuple[str, int]]:
        """What the publisher's connection subscribes to for the desk."""
        return [(protocol.ALL_RENEWALS, 1)]

    def start(self) -> RenewalDesk:
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._lock:
            self._stop = True
            self._lock.notify_all()
        if self._thread.is_alive():
            self._thread.join(10)

    # -- paho's thread: sort and drop, nothing more ----------------------------------------------
    def take_message(self, message: MessageLike) -> None:
        """A message from the subscription (``HubClient``'s ``on_message``)."""
        self.submit(message.topic, bytes(message.payload))

    def submit(self, topic: str, payload: bytes) -> None:
        """A message arrived on a renewal topic."""
        parsed = protocol.parse_device_topic(topic)
        with self._lock:
            self.counts["received"] += 1
            if parsed is None or parsed.channel != "renew" or len(payload) > MAX_REQUEST_BYTES:
                self.counts["dropped"] += 1
                return
            device = (parsed.site, parsed.device)
            if device not in self._waiting and (
                len(self._waiting) >= self.limits.max_waiting or self._spacing.wait(device) > 0
            ):
                self.counts["dropped"] += 1
                return
            if device in self._waiting:
                self.counts["dropped"] += 1  # the older one: the newest request counts
            else:
                self._spacing.mark(device)
            self._waiting[device] = bytes(payload)
            self._lock.notify_all()

    # -- the desk's thread -----------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._stop and not self._waiting:
                    self._lock.wait(1.0)
                if self._stop:
                    return
            if not self._bucket.take():
                with self._lock:
                    self._lock.wait(1.0 / self.limits.per_second)
                continue
            with self._lock:
                device, payload = self._waiting.popitem(last=False)
            try:
                self._answer(device, payload)
            except Exception:
                self._count("failed")
                log.exception("answering %s/%s's renewal request failed", *device)

    def _answer(self, device: Device, payload: bytes) -> None:
        site, name = device
        try:
            request = RenewalRequest.model_validate_json(payload)
            csr = request.csr.encode()
            key = requested_key(csr).public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        except ValidationError:
            self._refused(device, "not a renewal request")
            return
        except RequestRefused as exc:
            self._refused(device, str(exc))
            return
        earlier = self._recent(device)
        if earlier is not None and earlier.key == key:
            try:  # the answer was lost: the same certificate again, if it may still have it
                with self.engine.connect() as conn:
                    renewal.standing(conn, site, name)
            except ServiceError as exc:
                self._refused(device, str(exc))
                return
            pem = earlier.pem
            self._count("resent")
        else:
            try:
                cert = renewal.renew(
                    self.engine, self.authority, site, name, csr, self.limits.window
                )
            except ServiceError as exc:
                self._refused(device, str(exc))
                return
            pem = cert.public_bytes(serialization.Encoding.PEM).decode()
            with self._lock:
                self._issued.pop(device, None)  # kept in the order they were issued
                self._issued[device] = _Issued(self._clock(), key, pem)
            self._count("issued")
            log.info(
                "%s/%s: renewed its certificate (serial %s…, until %s)",
                site,
                name,
                f"{cert.serial_number:x}"[:16],
                cert.not_valid_after_utc.isoformat(timespec="minutes"),
            )
        topic, message, _id = command_message(
            self.signing_key, site, name, "certificate", {"certificate": pem}
        )
        self._send(topic, message)

    def _recent(self, device: Device) -> _Issued | None:
        """The certificate issued to ``device`` within the window, if any (and forget older)."""
        window = self.limits.window.total_seconds()
        with self._lock:
            now = self._clock()
            while self._issued:
                oldest = next(iter(self._issued.values()))
                if now - oldest.at < window:
                    break
                self._issued.popitem(last=False)
            return self._issued.get(device)

    def _count(self, outcome: str) -> None:
        with self._lock:
            self.counts[outcome] += 1

    def _refused(self, device: Device, reason: str) -> None:
        """Counted; logged at most once a minute (a door can ask in a loop), never quoted."""
        self._count("refused")
        now = self._clock()
        if now - self._log_at >= 60.0:
            self._log_at = now
            log.warning(
                "%s/%s: renewal request refused: %s (%d refused, %d dropped since start)",
                *device,
                reason,
                self.counts["refused"],
                self.counts["dropped"],
            )
