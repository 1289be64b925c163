"""The hub's MQTT connection: one paho client, connected and looping, with blocking publish."""

from __future__ import annotations

import contextlib
import logging
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from hafen.protocol import MAX_PACKET_BYTES

log = logging.getLogger(__name__)
#: How long a publish waits for a lost connection to come back before it gives up (the caller
#: retries later): an operator's request must not hang while the broker is away.
CONNECT_GRACE = 1.0


@dataclass(frozen=True)
class BrokerLogin:
    """How one hub service signs in at the broker (issue 14: each service its own client).

    ``username``/``password``: the service's dynamic-security client. ``ca_file``: the network
    CA that signed the broker's certificate (TLS on; None: plain TCP, for tests and the demo).
    ``cert_file``/``key_file``: the hub's client certificate, which a broker that requires
    certificates asks every client for."""

    username: str | None = None
    password: str | None = field(default=None, repr=False)  # never in a log line
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None

    def apply(self, client: mqtt.Client) -> None:
        """Set the user, password and TLS of ``client`` before it connects."""
        if self.username:
            client.username_pw_set(self.username, self.password)
        if self.ca_file is not None:
            client.tls_set(
                ca_certs=str(self.ca_file),
                certfile=str(self.cert_file) if self.cert_file else None,
                keyfile=str(self.key_file) if self.key_file else None,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )


class HubClient:
    """A paho MQTT v5 client for hub services; ``publish`` returns once the broker has it."""

    def __init__(
        self,
        host: str,
        port: int,
        client_id: str,
        subscriptions: list[tuple[str, int]] | None = None,
        on_message: Callable[[mqtt.MQTTMessage], None] | None = None,
        manual_ack: bool = False,
        session_expiry: int = 0,
        login: BrokerLogin | None = None,
        protocol: MQTTProtocolVersion = mqtt.MQTTv5,
    ) -> None:
        self.host, self.port = host, port
        self.protocol = protocol
        self._subscriptions = subscriptions or []
        self._session_expiry = session_expiry
        self.connected = threading.Event()
        #: Connections made so far: a change says the connection broke and came back.
        self.connections = 0
        v311 = protocol != mqtt.MQTTv5
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=(session_expiry == 0) if v311 else None,
            protocol=protocol,
            manual_ack=manual_ack,
        )
        self.client.max_queued_messages_set(0)
        self.client.max_inflight_messages_set(1000)
        self.client.reconnect_delay_set(1, 10)
        (login or BrokerLogin()).apply(self.client)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *_: self.connected.clear()
        if on_message is not None:
            self.client.on_message = lambda _c, _u, message: on_message(message)

    def start(self, wait: float = 10.0) -> None:
        if self.protocol == mqtt.MQTTv5:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = self._session_expiry
            # The broker never hands this client more (MQTT 3.1.1 has no such property: an
            # ingest worker relies on the broker's own max_packet_size, which the same constant
            # sets in the shipped config).
            props.MaximumPacketSize = MAX_PACKET_BYTES
            self.client.connect_async(
                self.host,
                self.port,
                keepalive=30,
                clean_start=self._session_expiry == 0,
                properties=props,
            )
        else:
            self.client.connect_async(self.host, self.port, keepalive=30)
        self.client.loop_start()
        if not self.connected.wait(wait):
            log.warning("no broker at %s:%s yet; retrying in the background", self.host, self.port)

    def leave(self, timeout: float = 5.0) -> bool:
        """Drop this client's subscriptions, for good, and wait for the broker to confirm.
        From then on nothing more is routed to its session: mosquitto queues a shared
        subscription's messages for a member that is away, however long, while its session
        persists. Returns whether the broker confirmed (False: not connected, or no answer)."""
        topics = [topic for topic, _ in self._subscriptions]
        self._subscriptions = []  # a reconnect meanwhile must not subscribe again
        if not topics or not self.connected.is_set():
            return False
        confirmed = threading.Event()
        self.client.on_unsubscribe = lambda *_: confirmed.set()
        result, _ = self.client.unsubscribe(topics)
        return result == mqtt.MQTT_ERR_SUCCESS and confirmed.wait(timeout)

    def stop(self) -> None:
        self.client.disconnect()
        # paho's race: the network thread, ending on the disconnect, may clear itself between
        # loop_stop's check and its join (AttributeError). It has ended, as was asked.
        with contextlib.suppress(AttributeError):
            self.client.loop_stop()

    def publish(
        self, topic: str, payload: bytes, retain: bool = False, timeout: float = 5.0
    ) -> None:
        """Publish at QoS 1 and return once the broker acknowledged it; raise TimeoutError if
        it did not within ``timeout`` (paho may still deliver it after a reconnect)."""
        if not self.connected.wait(min(timeout, CONNECT_GRACE)):
            raise TimeoutError(f"no broker connection to publish {topic}")
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        deadline = time.monotonic() + timeout
        while not _acknowledged(info, topic):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the broker did not acknowledge {topic} in {timeout} s")
            _wait(info, topic)

    def publish_many(self, messages: list[tuple[str, bytes, bool]], timeout: float = 10.0) -> None:
        """Publish a batch at QoS 1 without waiting in between, then wait for all of them."""
        if not self.connected.wait(min(timeout, CONNECT_GRACE)):
            raise TimeoutError("no broker connection to publish a batch")
        infos = [self.client.publish(t, p, qos=1, retain=r) for t, p, r in messages]
        deadline = time.monotonic() + timeout
        for info in infos:
            while not _acknowledged(info, "a batch"):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the broker did not acknowledge a batch in {timeout} s")
                _wait(info, "a batch")

    def _on_connect(
        self,
        client: mqtt.Client,
        _userdata: object,
        _flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            log.warning("broker refused the hub connection: %s", reason_code)
            return
        if self._subscriptions:
            client.subscribe(self._subscriptions)
        self.connections += 1
        self.connected.set()


def _acknowledged(info: mqtt.MQTTMessageInfo, what: str) -> bool:
    """Whether the broker acknowledged ``info``. paho raises RuntimeError when the connection
    was gone as the message was handed over (our ``connected`` flag can lag a broker that just
    dropped us, for instance for a refused publish); publish says TimeoutError for every way
    the broker did not take a message, as its callers expect."""
    try:
        return info.is_published()
    except RuntimeError:
        dropped = f"the connection dropped before the broker acknowledged {what}"
        raise TimeoutError(dropped) from None


def _wait(info: mqtt.MQTTMessageInfo, what: str) -> None:
    """Wait a moment for ``info``'s acknowledgement, saying TimeoutError as ``_acknowledged``."""
    try:
        info.wait_for_publish(0.05)
    except RuntimeError:
        dropped = f"the connection dropped before the broker acknowledged {what}"
        raise TimeoutError(dropped) from None
