"""The broker: connect as the door does, wait for the broker's CONNACK, disconnect.

Whose identity: the door's own. The broker ties a client id (and, with per-device
credentials, the user or certificate) to a device, so a connection under another id would
test rights the door does not use, and might be refused where the door is not.

Without disturbing the door's session. The agent keeps a persistent MQTT 5 session
(``clean_start=False``, ``session_expiry_seconds`` from ``[mqtt]``, edge.agent.link): it holds
the door's subscriptions, and what the hub sent while the door was away (an unlock, a list
snapshot, the ack that lets it forget sent events) waits in it. A clean start would wipe all
of that, and the agent, finding its session gone, would report a take-over; a session expiry
of 0 would end the session at our disconnect. So this connection resumes the session exactly
as the agent does (no clean start, the same expiry) and leaves it with a normal DISCONNECT,
which keeps it. Resuming makes the broker deliver what it queued for the door: paho's manual
acknowledgement leaves every such message unacknowledged and Receive Maximum 1 lets at most
one be in flight, so the broker still holds all of them for the agent, which gets them (again)
when it resumes the session. Nothing is subscribed or published, and there is no will: the
hub hears nothing of the test, and the door's retained state stays the agent's.

Run only while the agent is stopped (the self-test claims the door): two connections with one
client id would take the session from each other.
"""

from __future__ import annotations

import contextlib
import ssl
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edge.agent.config import MqttConfig
from edge.selftest.results import CheckResult, failed, passed
from hafen import protocol

#: Seconds to wait for the broker's answer (CONNACK).
BROKER_TIMEOUT = 5.0


def client_id(site: str, device: str) -> str:
    """The door's MQTT client id, as edge.agent.link connects with it."""
    return f"{site}.{device}"


def check_broker(
    cfg: MqttConfig, client: str, timeout: float = BROKER_TIMEOUT, hold: float = 0.0
) -> CheckResult:
    """Reach the broker of ``cfg`` as client ``client`` and leave its session as it was.

    ``hold``: seconds to stay connected after the broker's answer. What the broker delivers
    meanwhile stays unacknowledged whatever the hold (the tests hold on to show it).
    """
    where = f"{cfg.host}:{cfg.port}"
    over = (
        "over TLS with the door's certificate"
        if cfg.cert_file
        else ("over TLS" if cfg.ca_file else "without TLS (no ca_file)")
    )
    answered = threading.Event()
    answer: list[tuple[ReasonCode, bool]] = []

    def connected(
        _c: mqtt.Client,
        _u: object,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        _p: Properties | None,
    ) -> None:
        answer.append((reason, bool(flags.session_present)))
        answered.set()

    paho = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client, protocol=mqtt.MQTTv5, manual_ack=True
    )
    paho.on_connect = connected
    closed: list[bool] = []

    def disconnected(*_args: object) -> None:  # closed before a CONNACK: no need to wait
        closed.append(True)
        answered.set()

    paho.on_disconnect = disconnected
    paho.connect_timeout = timeout
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = cfg.session_expiry_seconds
    props.MaximumPacketSize = protocol.MAX_PACKET_BYTES
    props.ReceiveMaximum = 1
    try:
        if cfg.username:
            paho.username_pw_set(cfg.username, cfg.password_value())
        if cfg.ca_file:  # as edge.agent.link: the device's certificate, where it has one
            paho.tls_set(
                ca_certs=str(cfg.ca_file),
                certfile=str(cfg.cert_file) if cfg.cert_file else None,
                keyfile=str(cfg.key_file) if cfg.key_file else None,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        paho.connect(
            cfg.host, cfg.port, keepalive=cfg.keepalive, clean_start=False, properties=props
        )
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        return failed("broker", f"cannot reach {where} {over}: {exc}")
    paho.loop_start()
    try:
        if not answered.wait(timeout) or not answer:
            if closed:  # TLS 1.3 tells of a refused certificate only after the handshake
                why = "closed the connection without answering (TLS or certificate refused?)"
                return failed("broker", f"{where} {why} {over}")
            return failed("broker", f"{where} did not answer {over} within {timeout:g} s")
        reason, session = answer[0]
        if reason.is_failure:
            return failed("broker", f"{where} refused the door {over}: {reason}")
        kept = "its session kept" if session else "no session yet"
        time.sleep(hold)
        return passed("broker", f"connected to {where} {over} as the door, {kept}")
    finally:
        paho.disconnect()
        # paho's race (see edge.agent.link): its thread may be gone between check and join.
        with contextlib.suppress(AttributeError):
            paho.loop_stop()
