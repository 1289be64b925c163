"""The edge's MQTT link: a persistent MQTT v5 session to the broker, birth and will, routing.

paho runs the network in its own thread and reconnects with backoff. Its callbacks only hand
work over (to the outbox sender, the access-list updater, the agent loop); nothing blocks there.

The link takes nothing larger than ``protocol.MAX_PACKET_BYTES``: it says so in its CONNECT
(MQTT 5 Maximum Packet Size), and the broker drops a bigger message for it instead of sending
it (a 250 MB retained message once got a door OOM-killed over and over). Every state it
publishes (birth, will, goodbye) is sealed with the door's proof (hafen.device_proof), so the
hub can tell it from a state someone else published on the door's topic.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edge.agent.config import MqttConfig
from edge.agent.faults import FaultBoard
from edge.agent.outbox_sender import OutboxSender
from edge.agent.pacing import Pacer
from edge.agent.store import EdgeStore, OutboxEvent
from edge.agent.takeovers import LOST, SESSION_TAKEN_OVER, TakeoverWatch
from hafen import __version__, protocol
from hafen.device_proof import seal_state
from hafen.protocol import DeviceState, EventPayload

log = logging.getLogger(__name__)

#: Quick reconnects within this many seconds do not publish the will (MQTT v5 will delay).
WILL_DELAY_SECONDS = 10
#: A state on the door's own topic that it must correct (a late will) is answered at most
#: this often: anyone can publish there, as often as they like.
OWN_STATE_EVERY = 5.0


class EdgeLink:
    """Connects one device to the broker and keeps its outbox flowing to the hub.

    ``proof_key`` seals the door's states (hafen.device_proof.device_key); ``record`` queues an
    event for the outbox from paho's thread (a session take-over).
    """

    def __init__(
        self,
        cfg: MqttConfig,
        site: str,
        device: str,
        store: EdgeStore,
        on_acl: Callable[[bytes], None],
        on_command: Callable[[str, bytes], None],
        acl_version: Callable[[], int],
        proof_key: bytes,
        retained_on_connect: Callable[[], list[tuple[str, bytes]]] | None = None,
        faults: FaultBoard | None = None,
        seen_version: Callable[[], int] | None = None,
        record: Callable[[EventPayload], None] | None = None,
    ) -> None:
        self.cfg = cfg
        #: Retained messages (re)published on every connection: live state, HA discovery.
        self._retained_on_connect = retained_on_connect
        self.site = site
        self.device = device
        self._store = store
        self._on_acl = on_acl
        self._on_command = on_command
        self._acl_version = acl_version
        self._seen_version = seen_version or acl_version
        self._proof_key = proof_key
        self._faults = faults or FaultBoard()
        self.takeovers = TakeoverWatch(self._faults, record or (lambda _event: None))
        self._own_state = Pacer(OWN_STATE_EVERY)
        self._own_state_timer: threading.Timer | None = None
        #: When the broker last closed a connection the door did not end (None: it did not).
        self._lost_at: float | None = None
        self._stopping = False
        #: The link is replacing its client (a renewed certificate): the old one's goodbye is
        #: not a lost connection, and the new one's session is not one the sender can trust.
        self._switching = False
        self._fresh_client = False
        self._switch_lock = threading.Lock()
        self._started = time.monotonic()
        self._boot = _next_boot(store)
        self._connections = 0
        self.connected = False
        self.client = self._make_client()
        self.sender = OutboxSender(
            store,
            publish=lambda topic, payload: self.client.publish(topic, payload, qos=1),
            topic_of=self._event_topic,
            window=cfg.inflight_window,
        )

    @property
    def session(self) -> int:
        """Grows with every connection, across restarts too (boot count times a million)."""
        return self._boot * 1_000_000 + self._connections

    def _make_client(self) -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"{self.site}.{self.device}",
            protocol=mqtt.MQTTv5,
        )
        client.max_queued_messages_set(0)  # the outbox sender bounds what paho holds
        client.max_inflight_messages_set(self.cfg.inflight_window)
        client.reconnect_delay_set(1, int(self.cfg.reconnect_max_seconds))
        if self.cfg.username:
            client.username_pw_set(self.cfg.username, self.cfg.password_value())
        if self.cfg.ca_file:
            client.tls_set(
                ca_certs=str(self.cfg.ca_file),
                certfile=str(self.cfg.cert_file) if self.cfg.cert_file else None,
                keyfile=str(self.cfg.key_file) if self.cfg.key_file else None,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        client.on_connect = self._connected
        client.on_disconnect = self._disconnected
        client.on_publish = lambda _c, _u, mid, _rc, _p: self.sender.acked(mid)
        client.on_message = self._message
        self._set_will(client)
        return client

    def _set_will(self, client: mqtt.Client) -> None:
        """The will for the next connection, sealed now with what the door knows now."""
        props = Properties(PacketTypes.WILLMESSAGE)
        props.WillDelayInterval = WILL_DELAY_SECONDS
        #: The will as set (sealed when set: it says what the door knew then).
        self.will = self.state_message(online=False, will=True)
        client.will_set(
            protocol.state_topic(self.site, self.device),
            self.will,
            qos=1,
            retain=True,
            properties=props,
        )

    def state_message(self, online: bool, will: bool = False) -> bytes:
        """The door's state, sealed. A birth (online) carries what it runs and how it is, the
        goodbye what it knew last. The will, for the next connection, is published by the
        broker long after it was set: it leaves out the list versions, which would be those of
        its connection's start."""
        state = DeviceState(
            online=online,
            session=self.session + 1 if will else self.session,
            epoch=self._store.epoch,
            acl_version=None if will else self._acl_version(),
            seen_version=None if will else self._seen_version(),
            takeovers=self.takeovers.count,
            faults=self._faults.current(),
            **(
                {
                    "software": __version__,
                    "uptime_seconds": round(time.monotonic() - self._started, 1),
                    "at": datetime.now(UTC),
                }
                if online
                else {}
            ),
        )
        return protocol.encode_json(seal_state(self._proof_key, self.site, self.device, state))

    def start(self) -> None:
        self.sender.start()
        self._connect(self.client)

    def _connect(self, client: mqtt.Client) -> None:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.cfg.session_expiry_seconds
        # The broker drops what is bigger for this client instead of sending it (mosquitto 2).
        props.MaximumPacketSize = protocol.MAX_PACKET_BYTES
        client.connect_async(
            self.cfg.host,
            self.cfg.port,
            keepalive=self.cfg.keepalive,
            clean_start=False,
            properties=props,
        )
        client.loop_start()

    def switch_identity(self) -> None:
        """Connect again with the certificate and key now in the config's files (a renewal
        replaced them; edge.agent.renewal). paho loads them only when a client is made, so a
        new client takes over: the old one says goodbye with a clean DISCONNECT (the broker
        keeps the session and drops the will), and the new one resumes the session. What the
        old client had in flight is not carried over: the sender publishes again from the
        hub's mark, and the hub drops what it already has (by event id). Raises (and keeps
        the old connection) if the files do not load."""
        with self._switch_lock:
            if self._stopping:
                return
            fresh = self._make_client()  # loads the files now: a bad pair fails here
            old = self.client
            self._switching = True
            try:
                old.disconnect()
                with contextlib.suppress(AttributeError):  # paho's race, as in stop()
                    old.loop_stop()
            finally:
                self._switching = False
            self._fresh_client = True
            self.client = fresh
            self._set_will(fresh)  # the old client's goodbye counted no connection: the same
            self._connect(fresh)

    def ask_for_certificate(self, request: bytes) -> None:
        """Publish a certificate renewal request on the door's own ``.../renew``."""
        self.client.publish(protocol.renewal_topic(self.site, self.device), request, qos=1)

    def stop(self) -> None:
        """Say goodbye (retained offline state), then disconnect cleanly: no will is sent."""
        with self._switch_lock:
            self._stopping = True
        self.sender.stop()
        self.takeovers.stop()
        if self.connected:
            info = self.client.publish(
                protocol.state_topic(self.site, self.device),
                self.state_message(online=False),
                qos=1,
                retain=True,
            )
            info.wait_for_publish(2.0)
        self.client.disconnect()
        # paho's race: the network thread, ending on the disconnect, may clear itself between
        # loop_stop's check and its join (AttributeError). It has ended, as was asked.
        with contextlib.suppress(AttributeError):
            self.client.loop_stop()

    def publish_state(self) -> None:
        """Publish the retained birth state: online, software, access-list versions, session,
        faults, take-overs."""
        self.client.publish(
            protocol.state_topic(self.site, self.device),
            self.state_message(online=True),
            qos=1,
            retain=True,
        )

    def publish_retained(self, topic: str, payload: bytes) -> None:
        """A retained message (live state) that only the newest of matters: QoS 1, no outbox."""
        self.client.publish(topic, payload, qos=1, retain=True)

    def reply(self, name: str, payload: bytes) -> None:
        self.client.publish(protocol.reply_topic(self.site, self.device, name), payload, qos=1)

    def _event_topic(self, event: OutboxEvent) -> str:
        return protocol.event_topic(self.site, self.device, event.kind)

    # -- paho callbacks (network thread) ---------------------------------------------------------
    def _connected(
        self,
        client: mqtt.Client,
        _userdata: object,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            log.warning("broker refused the connection: %s", reason_code)
            return
        self._connections += 1
        self.connected = True
        log.info(
            "connected to %s:%s (session present: %s)",
            self.cfg.host,
            self.cfg.port,
            flags.session_present,
        )
        lost_at, self._lost_at = self._lost_at, None
        quick = lost_at is not None and time.monotonic() - lost_at < WILL_DELAY_SECONDS
        if quick and not flags.session_present:
            # Closed by a broker that stayed up, and the session gone (mosquitto 2.0 says no
            # more when another connection takes the client id with a clean start).
            self.takeovers.taken_over(LOST)
        client.subscribe(
            [
                (protocol.acl_topic(self.site), 1),
                (protocol.own_commands(self.site, self.device), 1),
                (protocol.state_topic(self.site, self.device), 1),
            ]
        )
        self.publish_state()
        for topic, payload in self._retained_on_connect() if self._retained_on_connect else []:
            client.publish(topic, payload, qos=1, retain=True)
        # A new client (switch_identity) resumes the broker's session, but not what the old
        # client had in flight: to the sender, that is a session lost (send from the mark).
        fresh, self._fresh_client = self._fresh_client, False
        self.sender.connected(bool(flags.session_present) and not fresh)

    def _disconnected(
        self,
        client: mqtt.Client,
        _userdata: object,
        _flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        self.connected = False
        self.sender.disconnected()
        if reason_code.value == SESSION_TAKEN_OVER:
            self.takeovers.taken_over()  # before the will: it carries the count
        elif not (self._stopping or self._switching):
            self._lost_at = time.monotonic()
        self._set_will(client)  # the next connection's will carries the next session number
        log.warning("disconnected from the broker: %s", reason_code)

    def _message(self, _client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
        topic = message.topic
        payload = bytes(message.payload)  # paho's bytes already (bytes() returns it as it is)
        if topic == protocol.acl_topic(self.site):
            self._on_acl(payload)  # the updater bounds its size
        elif topic == protocol.state_topic(self.site, self.device):
            self._check_own_state(payload)
        elif (parsed := protocol.parse_device_topic(topic)) and parsed.channel == "cmd":
            self._on_command(parsed.name or "", payload)  # the agent bounds these

    def _check_own_state(self, payload: bytes) -> None:
        """A late will of an earlier session overwrote the retained state: put the birth back
        (at a bounded rate: anyone can publish an old-looking state here)."""
        if len(payload) > protocol.MAX_DEVICE_MESSAGE_BYTES:
            return  # no state of a door is this large: not read
        try:
            state = DeviceState.model_validate_json(payload)
        except ValueError:
            return
        if state.online or state.session >= self.session or not self.connected:
            return
        if self._own_state.ready():
            self.publish_state()
        elif self._own_state_timer is None or not self._own_state_timer.is_alive():
            # More came since the last answer: answer once more when the interval is over.
            self._own_state_timer = threading.Timer(self._own_state.wait(), self._put_back)
            self._own_state_timer.daemon = True
            self._own_state_timer.start()

    def _put_back(self) -> None:
        if self.connected and self._own_state.ready():
            self.publish_state()


def _next_boot(store: EdgeStore) -> int:
    """Count agent starts durably, so session numbers keep growing across restarts."""
    with store.write() as conn:
        boot = int(store.get_meta("boot") or 0) + 1
        store.set_meta(conn, "boot", boot)
    return boot
