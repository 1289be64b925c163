"""The edge's MQTT link: a persistent MQTT v5 session to the broker, birth and will, routing.

paho runs the network in its own thread and reconnects with backoff. Its callbacks only hand
work over (to the outbox sender, the access-list updater, the agent loop); nothing blocks there.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Callable
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edge.agent.config import MqttConfig
from edge.agent.outbox_sender import OutboxSender
from edge.agent.store import EdgeStore, OutboxEvent
from hafen import __version__, protocol
from hafen.protocol import DeviceState

log = logging.getLogger(__name__)

#: Quick reconnects within this many seconds do not publish the will (MQTT v5 will delay).
WILL_DELAY_SECONDS = 10


class EdgeLink:
    """Connects one device to the broker and keeps its outbox flowing to the hub."""

    def __init__(
        self,
        cfg: MqttConfig,
        site: str,
        device: str,
        store: EdgeStore,
        on_acl: Callable[[bytes], None],
        on_command: Callable[[str, bytes], None],
        acl_version: Callable[[], int],
        retained_on_connect: Callable[[], list[tuple[str, bytes]]] | None = None,
        faults: Callable[[], dict[str, str]] | None = None,
    ) -> None:
        self.cfg = cfg
        #: Retained messages (re)published on every connection: live state, HA discovery.
        self._retained_on_connect = retained_on_connect
        self.site = site
        self.device = device
        self._on_acl = on_acl
        self._on_command = on_command
        self._acl_version = acl_version
        self._faults = faults or dict
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
            client.tls_set(ca_certs=str(self.cfg.ca_file), tls_version=ssl.PROTOCOL_TLS_CLIENT)
        client.on_connect = self._connected
        client.on_disconnect = self._disconnected
        client.on_publish = lambda _c, _u, mid, _rc, _p: self.sender.acked(mid)
        client.on_message = self._message
        self._set_will(client)
        return client

    def _set_will(self, client: mqtt.Client) -> None:
        props = Properties(PacketTypes.WILLMESSAGE)
        props.WillDelayInterval = WILL_DELAY_SECONDS
        will = DeviceState(online=False, session=self.session + 1)
        client.will_set(
            protocol.state_topic(self.site, self.device),
            protocol.encode_json(will),
            qos=1,
            retain=True,
            properties=props,
        )

    def start(self) -> None:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.cfg.session_expiry_seconds
        self.sender.start()
        self.client.connect_async(
            self.cfg.host,
            self.cfg.port,
            keepalive=self.cfg.keepalive,
            clean_start=False,
            properties=props,
        )
        self.client.loop_start()

    def stop(self) -> None:
        """Say goodbye (retained offline state), then disconnect cleanly: no will is sent."""
        self.sender.stop()
        if self.connected:
            info = self.client.publish(
                protocol.state_topic(self.site, self.device),
                protocol.encode_json(DeviceState(online=False, session=self.session)),
                qos=1,
                retain=True,
            )
            info.wait_for_publish(2.0)
        self.client.disconnect()
        self.client.loop_stop()

    def publish_state(self) -> None:
        """Publish the retained birth state: online, software, access-list version, session."""
        state = DeviceState(
            online=True,
            session=self.session,
            software=__version__,
            acl_version=self._acl_version(),
            faults=self._faults(),
            uptime_seconds=round(time.monotonic() - self._started, 1),
            at=datetime.now(UTC),
        )
        self.client.publish(
            protocol.state_topic(self.site, self.device),
            protocol.encode_json(state),
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
        self.sender.connected(bool(flags.session_present))

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
        self._set_will(client)  # the next connection's will carries the next session number
        log.warning("disconnected from the broker: %s", reason_code)

    def _message(self, _client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
        topic = message.topic
        payload = bytes(message.payload)  # paho's bytes already (bytes() returns it as it is)
        if topic == protocol.acl_topic(self.site):
            self._on_acl(payload)
        elif topic == protocol.state_topic(self.site, self.device):
            self._check_own_state(payload)
        elif (parsed := protocol.parse_device_topic(topic)) and parsed.channel == "cmd":
            self._on_command(parsed.name or "", payload)

    def _check_own_state(self, payload: bytes) -> None:
        """A late will of an earlier session overwrote the retained state: put the birth back."""
        try:
            state = DeviceState.model_validate_json(payload)
        except ValueError:
            return
        if not state.online and state.session < self.session and self.connected:
            self.publish_state()


def _next_boot(store: EdgeStore) -> int:
    """Count agent starts durably, so session numbers keep growing across restarts."""
    with store.write() as conn:
        boot = int(store.get_meta("boot") or 0) + 1
        store.set_meta(conn, "boot", boot)
    return boot
