"""Certificates for tests: the network's CA, devices' identities made as a device makes
them, and a device's MQTT client over TLS."""

from __future__ import annotations

import ssl
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from hub.pki import (
    CaFiles,
    init_ca,
    issue_device_certificate,
)
from tests.support.clients import close_client
from tests.support.waiting import wait_for


def make_ca(tmp_path, name: str = "ca", *hosts: str) -> CaFiles:
    files = CaFiles(tmp_path / name)
    init_ca(files, "leipzig", list(hosts) or ["localhost", "127.0.0.1"])
    return files


def device_identity(tmp_path, files: CaFiles, site: str, device: str) -> tuple[Path, Path]:
    """A device's key, born where the device is, and the certificate the CA gives it for a
    request; as files (certificate, key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    csr = request_for(key, "whatever the device asks for")
    cert = issue_device_certificate(files, csr, site, device)
    cert_file, key_file = tmp_path / f"{device}.crt", tmp_path / f"{device}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def request_for(key, common_name: str) -> bytes:
    subject = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, common_name)])
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM)


class Device:
    """A device's MQTT client over TLS with its certificate."""

    def __init__(
        self,
        port: int,
        files: CaFiles,
        identity: tuple[Path, Path],
        client_id: str,
        password: tuple[str, str] | None = None,
    ):
        self.connected = threading.Event()
        self.answered = threading.Event()
        self.granted: list[ReasonCode] = []
        #: The broker's answer (PUBACK) to each QoS 1 message, by message id.
        self.acked: dict[int, ReasonCode] = {}
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        self.client.tls_set(
            ca_certs=str(files.ca_cert),
            certfile=str(identity[0]),
            keyfile=str(identity[1]),
            tls_version=ssl.PROTOCOL_TLS_CLIENT,
        )
        if password is not None:
            self.client.username_pw_set(*password)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *_: self.answered.set()
        self.client.on_subscribe = lambda _c, _u, _m, codes, _p: self.granted.extend(codes)
        self.client.on_publish = self._on_publish
        self.client.connect("localhost", port)
        self.client.loop_start()
        self.answered.wait(5)

    def _on_connect(self, _c, _u, _f, reason, _p) -> None:
        if reason == 0:
            self.connected.set()
        self.answered.set()

    def _on_publish(self, _c, _u, mid: int, reason: ReasonCode, _p) -> None:
        self.acked[mid] = reason

    def publish(self, topic: str, payload: bytes = b"{}", timeout: float = 15.0) -> ReasonCode:
        """Publish at QoS 1 and wait for the broker's answer to it (its PUBACK's reason code).

        mosquitto 2.0 closes the connection of a client whose QoS 1 message it refused, right
        after it answered "not authorized"; paho connects again after a second and sends a
        message not yet answered once more. So the answer may take a reconnection or two:
        ``timeout`` leaves room for them on a busy machine."""
        info = self.client.publish(topic, payload, qos=1)
        assert wait_for(lambda: info.mid in self.acked, timeout), f"no answer to {topic}"
        return self.acked[info.mid]

    def subscribe(self, topic: str) -> ReasonCode:
        before = len(self.granted)
        self.client.subscribe(topic, qos=1)
        assert wait_for(lambda: len(self.granted) > before, 5)
        return self.granted[-1]

    def close(self) -> None:
        close_client(self.client)
