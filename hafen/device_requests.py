"""A door's HTTPS requests to the hub, signed with the key of its certificate.

A door downloads its releases from the hub over HTTPS (issue 17). The hub must know which
door asks, whatever sits in front of it (a TLS-terminating proxy passes no client
certificate on), so each request carries the door's certificate and an ECDSA signature by
its key over the method, the path and the time. The hub then checks what it checks at the
broker: the certificate is from the network's CA, registered to that door and not revoked
(hub.release_downloads); here is only what both sides agree on.

A captured request can be replayed for ``MAX_AGE`` to the same path: a GET of a file that is
signed and hashed by the release's manifest anyway, so nothing is gained by it.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

#: The door's certificate, DER in base64.
CERTIFICATE_HEADER = "X-Hafen-Device-Certificate"
#: ``<ISO time> <base64 signature>``.
SIGNATURE_HEADER = "X-Hafen-Device-Signature"
#: How far a request's time may be from the hub's clock, either way.
MAX_AGE = timedelta(minutes=5)
#: The largest certificate header taken (a P-256 device certificate is about 700 characters).
MAX_CERTIFICATE_CHARS = 4096
_DOMAIN = "hafen-device-request-v1"


class RequestRefused(ValueError):
    """A request that is not a door's signed request; the message says why."""


def _signed_text(method: str, path: str, at: str) -> bytes:
    return f"{_DOMAIN}\n{method.upper()}\n{path}\n{at}".encode()


def signed_request_headers(
    key: ec.EllipticCurvePrivateKey,
    certificate: x509.Certificate,
    method: str,
    path: str,
    at: datetime,
) -> dict[str, str]:
    """The headers that sign a request for ``path`` (with its query, as sent) at ``at``."""
    stamp = at.isoformat()
    signature = key.sign(_signed_text(method, path, stamp), ec.ECDSA(hashes.SHA256()))
    der = certificate.public_bytes(Encoding.DER)
    return {
        CERTIFICATE_HEADER: base64.b64encode(der).decode(),
        SIGNATURE_HEADER: f"{stamp} {base64.b64encode(signature).decode()}",
    }


def read_signed_request(
    headers: Mapping[str, str], method: str, path: str, now: datetime
) -> x509.Certificate:
    """The certificate whose key signed this request for ``method`` and ``path`` within
    ``MAX_AGE`` of ``now``; RequestRefused otherwise. Whose certificate it is, and whether
    the network still trusts it, is the caller's to check."""
    cert_text = headers.get(CERTIFICATE_HEADER)
    signature_text = headers.get(SIGNATURE_HEADER)
    if not cert_text or not signature_text:
        raise RequestRefused("the request is not signed by a device")
    if len(cert_text) > MAX_CERTIFICATE_CHARS or len(signature_text) > 400:
        raise RequestRefused("the request's device headers are too long")
    stamp, _, signature_b64 = signature_text.partition(" ")
    try:
        at = datetime.fromisoformat(stamp)
        certificate = x509.load_der_x509_certificate(base64.b64decode(cert_text, validate=True))
        signature = base64.b64decode(signature_b64, validate=True)
    except (ValueError, binascii.Error):
        raise RequestRefused("the request's device headers do not read") from None
    if at.tzinfo is None or abs(now - at) > MAX_AGE:
        raise RequestRefused("the request's time is too far from the hub's clock")
    public_key = certificate.public_key()
    if not isinstance(public_key, ec.EllipticCurvePublicKey):
        raise RequestRefused("the certificate's key is not an EC key")
    try:
        public_key.verify(signature, _signed_text(method, path, stamp), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise RequestRefused("the signature does not verify with the certificate") from None
    return certificate
