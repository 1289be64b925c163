"""The door renews its own certificate before it ends, over the link it already has.

A device's certificate (``[mqtt] cert_file``) is valid for 90 days; once expired, the broker
refuses the door and only a technician can bring it back (``hafen provision enrol``). So the
agent looks at it when it starts and every 6 hours, and with less than a third of its life
left:

1. it makes a new key (ECDSA P-256) and keeps it beside the current one as a *pending* key
   (``device.key.pending``, owner-only), so a restart asks again for the same key;
2. it publishes a certificate request for it on its own ``.../renew`` topic, which only this
   door may publish on, when it is connected; without an answer it asks again after 1 minute,
   then 2, 4 ... up to once an hour;
3. the hub answers with a sealed ``certificate`` command (verified like every command: signed
   by the hub, for this device, fresh). The certificate is taken only if it is for the pending
   key, signed by the network's CA (``ca_file``), names this device, and ends later than the
   current one;
4. it is installed: the certificate file is replaced (written beside it, synced, renamed),
   then the pending key is renamed over the key file and the directory synced. A crash in
   between leaves the new certificate with the old key and the pending key beside them: the
   next start (``finish_interrupted``) sees that the pending key fits the certificate and
   renames it, so the pair the link loads always belongs together;
5. the link connects again with the new pair (edge.agent.link.EdgeLink.switch_identity; the
   outbox is sent again from the hub's mark, so no event is lost or doubled), and a
   ``device.certificate`` event tells the hub which certificate the door now uses.

The files' directory must be writable by the agent (provisioning: ``/etc/hafen/tls``).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from edge.agent.pacing import Pacer
from hafen import protocol
from hafen.files import sync_directory, write_atomically
from hafen.protocol import CertificateRenewed, CommandReply, EventPayload, RenewalRequest

if TYPE_CHECKING:
    from edge.agent.config import MqttConfig
    from edge.agent.link import EdgeLink
    from edge.agent.remote import Command

log = logging.getLogger(__name__)

#: How often the certificate is looked at while it has more than a third of its life left.
CHECK_EVERY = 6 * 3600.0
#: Renew when less than this share of the certificate's life is left.
RENEW_WHEN_LEFT = 1 / 3
#: Asking again while no answer comes: after this long, doubling up to the longest.
ASK_FIRST, ASK_LONGEST = 60.0, 3600.0
#: While renewal is due and the link is down, look again this often.
WAIT_FOR_LINK = 1.0


@dataclass(frozen=True)
class IdentityFiles:
    """The door's identity at the broker: its certificate, its key, and the CA they chain to."""

    certificate: Path
    key: Path
    ca: Path

    @classmethod
    def of(cls, mqtt: MqttConfig) -> IdentityFiles | None:
        """The files a config names; None for a door without a certificate of its own."""
        if mqtt.cert_file is None or mqtt.key_file is None or mqtt.ca_file is None:
            return None
        return cls(mqtt.cert_file, mqtt.key_file, mqtt.ca_file)

    @property
    def pending(self) -> Path:
        """The new key, made for a renewal and kept until its certificate is installed."""
        return self.key.with_name(self.key.name + ".pending")


def finish_interrupted(files: IdentityFiles) -> bool:
    """Finish an installation a crash interrupted (step 4): if the pending key fits the
    certificate, it becomes the key. Run before the link loads the files. Returns whether it
    finished one."""
    if not files.pending.exists():
        return False
    try:
        pending = _load_key(files.pending)
        cert = x509.load_pem_x509_certificate(files.certificate.read_bytes())
    except (OSError, ValueError) as exc:
        log.warning("cannot check the pending key against the certificate: %s", exc)
        return False
    if _public(cert.public_key()) != _public(pending.public_key()):
        return False  # still waiting for its certificate
    _adopt_pending_key(files)
    log.warning("finished installing the renewed certificate (the agent stopped in between)")
    return True


def _left_over(files: IdentityFiles) -> bool:
    """Whether the pending key surely belongs to no certificate the door has (False when
    either cannot be read: then it is kept)."""
    try:
        pending = _load_key(files.pending)
        cert = x509.load_pem_x509_certificate(files.certificate.read_bytes())
    except (OSError, ValueError):
        return False
    return _public(cert.public_key()) != _public(pending.public_key())


class CertificateRenewal:
    """Renews the door's certificate in a thread of its own (see the module).

    ``record`` queues an event for the outbox (the agent's loop writes it).
    """

    def __init__(
        self,
        files: IdentityFiles,
        site: str,
        device: str,
        link: EdgeLink,
        record: Callable[[EventPayload], None],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.files = files
        self.site = site
        self.device = device
        self.link = link
        self._record = record
        self._clock = clock
        self._ask = Pacer(ASK_FIRST, ASK_LONGEST)
        self._offers: queue.SimpleQueue[Command | None] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="certificate-renewal", daemon=True)
        #: Certificates installed since the agent started.
        self.renewed = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._offers.put(None)
        if self._thread.is_alive():
            self._thread.join(10)

    def offer(self, command: Command) -> None:
        """A verified ``certificate`` command (from the agent's loop); installed in this thread."""
        self._offers.put(command)

    # -- the thread ------------------------------------------------------------------------------
    def _run(self) -> None:
        wait = 0.0
        while not self._stopping.is_set():
            try:
                command = self._offers.get(timeout=wait)
            except queue.Empty:
                command = None
            if self._stopping.is_set():
                return
            try:
                if command is not None:
                    self._take(command)
                wait = self._look()
            except Exception:
                log.exception("renewing the certificate failed; trying again in a minute")
                wait = ASK_FIRST

    def _look(self) -> float:
        """Ask for a certificate if one is due; returns how long until the next look."""
        try:
            cert = x509.load_pem_x509_certificate(self.files.certificate.read_bytes())
        except (OSError, ValueError) as exc:
            log.error("cannot read the certificate %s: %s", self.files.certificate, exc)
            return CHECK_EVERY
        left = cert.not_valid_after_utc - self._clock()
        due_in = left - (cert.not_valid_after_utc - cert.not_valid_before_utc) * RENEW_WHEN_LEFT
        if due_in > timedelta(0):
            self._ask.reset()
            # A pending key that fits the certificate is an installation to finish (it failed
            # midway while the agent ran on): never to delete, it is the new certificate's
            # only key. One that fits nothing is left from a renewal that is over.
            if not finish_interrupted(self.files) and _left_over(self.files):
                self.files.pending.unlink(missing_ok=True)
            return min(CHECK_EVERY, due_in.total_seconds())
        if left <= timedelta(0):
            log.error(
                "the certificate ended at %s: the broker refuses it; enrol the door again",
                cert.not_valid_after_utc.isoformat(timespec="minutes"),
            )
        if not self.link.connected:
            return WAIT_FOR_LINK
        if self._ask.ready():
            request = RenewalRequest(csr=_request_for(pending_key(self.files)))
            self.link.ask_for_certificate(protocol.encode_json(request))
            log.info(
                "the certificate ends at %s: asked the hub for a new one",
                cert.not_valid_after_utc.isoformat(timespec="minutes"),
            )
        return max(self._ask.wait(), 0.1)

    def _take(self, command: Command) -> None:
        """Check the certificate the hub sent, install it, and connect with it."""
        client_id = f"{self.site}.{self.device}"
        try:
            cert, pem = check_offer(self.files, client_id, command.args.get("certificate"))
        except CertificateRefused as exc:
            log.warning("the hub's certificate refused: %s", exc)
            self._reply(command.id, False, str(exc))
            return
        install(self.files, pem)
        self.renewed += 1
        serial = f"{cert.serial_number:x}"[:16]
        log.info(
            "installed the renewed certificate (serial %s…, until %s); connecting with it",
            serial,
            cert.not_valid_after_utc.isoformat(timespec="minutes"),
        )
        self._record(CertificateRenewed(serial=serial, not_after=cert.not_valid_after_utc))
        self._reply(command.id, True, None)
        self._ask.reset()
        self.link.switch_identity()

    def _reply(self, command_id: str, ok: bool, detail: str | None) -> None:
        reply = CommandReply(command=command_id, ok=ok, detail=detail)
        self.link.reply("certificate", protocol.encode_json(reply))


def pending_key(files: IdentityFiles) -> ec.EllipticCurvePrivateKey:
    """The pending key (step 1): the one made earlier, so a restart asks for the same; else
    a new one, written owner-only beside the current key."""
    if files.pending.exists():
        try:
            return _load_key(files.pending)
        except (OSError, ValueError) as exc:
            log.warning("the pending key cannot be read (%s): making a new one", exc)
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_atomically(files.pending, pem)  # owner-only; the directory synced
    return key


class CertificateRefused(Exception):
    """A certificate from the hub that the door does not install; the message says why."""


def check_offer(
    files: IdentityFiles, client_id: str, text: object, now: datetime | None = None
) -> tuple[x509.Certificate, bytes]:
    """The certificate the hub sent (PEM text), if this door may take it (step 3): for the
    pending key, signed by the CA, naming ``client_id``, ending later than the current one
    and not yet ended. Raises CertificateRefused saying which check failed."""
    if not isinstance(text, str) or len(text) > protocol.MAX_PEM_CHARS:
        raise CertificateRefused("the command carries no certificate")
    if not files.pending.exists():
        raise CertificateRefused("no renewal is pending")
    pem = text.encode()
    try:
        cert = x509.load_pem_x509_certificate(pem)
        ca = x509.load_pem_x509_certificate(files.ca.read_bytes())
        cert.verify_directly_issued_by(ca)
        pending = _load_key(files.pending)
        current = x509.load_pem_x509_certificate(files.certificate.read_bytes())
    except InvalidSignature:  # a CA of the same name, but not ours
        raise CertificateRefused("the certificate does not check out: not the CA's") from None
    except (ValueError, TypeError, OSError) as exc:
        raise CertificateRefused(f"the certificate does not check out: {exc}") from None
    if _public(cert.public_key()) != _public(pending.public_key()):
        raise CertificateRefused("the certificate is not for the pending key")
    names = [n.value for n in cert.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)]
    if names != [client_id]:
        raise CertificateRefused("the certificate names another device")
    if cert.not_valid_after_utc <= current.not_valid_after_utc:
        raise CertificateRefused("the certificate ends no later than the current one")
    if cert.not_valid_after_utc <= (now or datetime.now(UTC)):
        raise CertificateRefused("the certificate has ended")
    return cert, pem


def install(files: IdentityFiles, pem: bytes) -> None:
    """Make the checked certificate and the pending key the door's pair (step 4)."""
    install_certificate(files, pem)
    _adopt_pending_key(files)


def install_certificate(files: IdentityFiles, pem: bytes) -> None:
    """The first half of ``install``: the certificate is in place, the key not yet (the
    state a crash between the two leaves, which ``finish_interrupted`` completes)."""
    # Owner-only, and on disk with its directory before the key follows it.
    write_atomically(files.certificate, pem)


def _adopt_pending_key(files: IdentityFiles) -> None:
    """The pending key becomes the key: the pair belongs together again."""
    os.replace(files.pending, files.key)
    sync_directory(files.key.parent)


def _request_for(key: ec.EllipticCurvePrivateKey) -> str:
    """A certificate request for ``key``; the hub names the device itself, whatever it says."""
    subject = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "hafen device")])
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def _load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{path} is not an ECDSA key")
    return key


def _public(key: object) -> bytes:
    if not isinstance(key, ec.EllipticCurvePublicKey):
        return b""
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
