"""The network's certificate authority: the root of who may talk to the broker.

Until now anyone who reached the broker could publish and read everything (issue 13's
attacks). The provisioning issue gives every device an identity: a certificate the hub issues
from this CA at enrolment, with the device's key born on the device. This module makes the CA
and the broker's server certificate (``hafen hub init-ca``), so the broker can listen with TLS
and doors can check they talk to the network's broker.

Keys are ECDSA P-256: every TLS stack a Pi or mosquitto 2.0 carries speaks it, and keys and
signatures are small. Private keys are written once, owner-only (0600, in a 0700 directory;
``hand_over`` lets the broker's group read the directory and the broker's key), never replaced
and never printed; certificates are public (0644).
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hub.keys import write_new

#: How long the CA is valid: a network outlives its hardware; the CA is replaced on purpose.
CA_DAYS = 10 * 365
#: How long the broker's certificate is valid (about two years: a new one is a new init-ca
#: in a new directory for now, so the date is printed when it is made).
BROKER_DAYS = 825
#: How long a device's certificate is valid; devices renew it themselves well before.
DEVICE_DAYS = 90
DEVICE_LIFETIME = timedelta(days=DEVICE_DAYS)
#: How long a revocation list is valid: the broker must be given a new one before.
CRL_DAYS = 30
#: The common name of the hub services' client certificate (never a device's: no dot).
HUB_CLIENT = "hafen-hub"
SERVER, CLIENT = ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH
#: The largest certificate request taken (a P-256 request is about 400 bytes).
MAX_CSR_BYTES = 8192
#: Clocks of freshly booted Pis run behind until NTP: certificates start a little earlier.
BACKDATE = timedelta(minutes=5)
_DNS_NAME = re.compile(
    r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$"
)


@dataclass(frozen=True)
class CaFiles:
    """Where a network's CA keeps its files: one directory, fixed names."""

    directory: Path

    @property
    def ca_key(self) -> Path:
        return self.directory / "ca.key"

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def broker_key(self) -> Path:
        return self.directory / "broker.key"

    @property
    def broker_cert(self) -> Path:
        return self.directory / "broker.crt"

    @property
    def hub_key(self) -> Path:
        """The hub services' client key: a broker that requires certificates asks them too."""
        return self.directory / "hub.key"

    @property
    def hub_cert(self) -> Path:
        return self.directory / "hub.crt"

    @property
    def crl(self) -> Path:
        """The revocation list the broker loads; init_ca writes an empty one."""
        return self.directory / "ca.crl"

    def all(self) -> tuple[Path, ...]:
        return (
            self.ca_key,
            self.ca_cert,
            self.broker_key,
            self.broker_cert,
            self.hub_key,
            self.hub_cert,
            self.crl,
        )


def broker_name(text: str) -> x509.GeneralName:
    """A name the broker is reached by, as a certificate names it: an IP address or a DNS
    name (lower case); raises ValueError naming what is wrong."""
    try:
        return x509.IPAddress(ipaddress.ip_address(text))
    except ValueError:
        pass
    name = text.strip().lower().rstrip(".")
    if not _DNS_NAME.match(name):
        raise ValueError(f"{text!r} is neither an IP address nor a host name")
    return x509.DNSName(name)


def init_ca(
    files: CaFiles, network: str, broker_names: Sequence[str], now: datetime | None = None
) -> tuple[x509.Certificate, x509.Certificate]:
    """Make the network's CA and the broker's certificate in ``files.directory``.

    Refuses (FileExistsError, nothing written) if any of the files exists: replacing a CA
    would cut every enrolled device off. Raises ValueError for a bad broker name or network,
    also before anything is written. Returns (CA certificate, broker certificate).
    """
    for path in files.all():
        if path.exists():
            raise FileExistsError(path)
    if not network.strip() or len(network) > 64:
        raise ValueError("the network's name must be 1 to 64 characters")
    if not broker_names:
        raise ValueError("name at least one host name or address the broker is reached by")
    names = [broker_name(n) for n in broker_names]
    now = now or datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _ca_certificate(ca_key, network, now)
    broker_key = ec.generate_private_key(ec.SECP256R1())
    broker_cert = _broker_certificate(broker_key, ca_key, ca_cert, names, now)
    hub_key = ec.generate_private_key(ec.SECP256R1())
    hub_cert = _leaf(
        ca_key,
        ca_cert,
        hub_key.public_key(),
        _name("hub", HUB_CLIENT),
        CLIENT,
        timedelta(days=BROKER_DAYS),
        now,
    )
    files.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    written: list[Path] = []
    try:
        for path, data, mode in (
            (files.ca_key, _key_pem(ca_key), 0o600),
            (files.broker_key, _key_pem(broker_key), 0o600),
            (files.hub_key, _key_pem(hub_key), 0o600),
            (files.ca_cert, ca_cert.public_bytes(serialization.Encoding.PEM), 0o644),
            (files.broker_cert, broker_cert.public_bytes(serialization.Encoding.PEM), 0o644),
            (files.hub_cert, hub_cert.public_bytes(serialization.Encoding.PEM), 0o644),
            (files.crl, _crl_pem(ca_key, ca_cert, [], now), 0o644),
        ):
            write_new(path, data, mode)
            written.append(path)
    except BaseException:
        for path in written:  # all or nothing: a half-made CA would be refused next time
            path.unlink(missing_ok=True)
        raise
    return ca_cert, broker_cert


def hand_over(files: CaFiles, owner: str | None, broker_group: str | None) -> None:
    """Give the CA's files to the hub's user (``owner``: ``serve`` signs devices' requests
    and rewrites the revocation list) and let the broker's group read what the broker loads:
    the directory (0750), the broker's key (0640), the certificates and the list. The CA's
    key and the hub's stay owner-only. Raises LookupError for a user or group that is not."""
    import grp
    import pwd

    uid = pwd.getpwnam(owner).pw_uid if owner else -1
    gid = grp.getgrnam(broker_group).gr_gid if broker_group else -1
    for path in (files.directory, *files.all()):
        os.chown(path, uid, gid if path in (files.directory, files.broker_key) else -1)
    if broker_group:
        files.directory.chmod(0o750)
        files.broker_key.chmod(0o640)


class RequestRefused(ValueError):
    """A certificate request that is not taken, and why."""


def device_client_id(site: str, device: str) -> str:
    """The client id (and certificate common name) of a device: the broker ties them."""
    return f"{site}.{device}"


def requested_key(csr_pem: bytes) -> ec.EllipticCurvePublicKey:
    """The key a certificate request is for, if the request is taken: PEM, at most
    MAX_CSR_BYTES, signed by its own key (proof that the device holds it), for an ECDSA P-256
    key. Raises RequestRefused saying which (never quoting the request)."""
    if len(csr_pem) > MAX_CSR_BYTES:
        raise RequestRefused(f"the request is {len(csr_pem)} bytes, over {MAX_CSR_BYTES}")
    try:
        csr = x509.load_pem_x509_csr(csr_pem)
    except ValueError:
        raise RequestRefused("the request is not a PEM certificate request") from None
    if not csr.is_signature_valid:
        raise RequestRefused("the request's signature does not verify")
    public = csr.public_key()
    if not isinstance(public, ec.EllipticCurvePublicKey) or public.curve.name != "secp256r1":
        raise RequestRefused("the request's key is not an ECDSA P-256 key")
    return public


def issue_device_certificate(
    files: CaFiles,
    csr_pem: bytes,
    site: str,
    device: str,
    lifetime: timedelta = DEVICE_LIFETIME,
    now: datetime | None = None,
) -> x509.Certificate:
    """Sign a device's certificate request: the key was born on the device and stays there.

    The request must be one ``requested_key`` takes. Whatever names it asks for, the
    certificate names the device as the hub registered it (common name ``site.device``, the
    client id the broker then insists on) and may only authenticate a client. It is valid for
    ``lifetime`` (and BACKDATE before now, for clocks behind).
    """
    public = requested_key(csr_pem)
    ca_key, ca_cert = load_ca(files)
    subject = _name(site, device_client_id(site, device))
    return _leaf(ca_key, ca_cert, public, subject, CLIENT, lifetime, now or datetime.now(UTC))


def revocation_list(
    files: CaFiles, revoked: Sequence[tuple[int, datetime]], now: datetime | None = None
) -> bytes:
    """The CA's revocation list (PEM) naming ``revoked`` (serial, when), for the broker's
    ``crlfile``: a device on it cannot connect again."""
    ca_key, ca_cert = load_ca(files)
    return _crl_pem(ca_key, ca_cert, revoked, now or datetime.now(UTC))


def _crl_pem(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    revoked: Sequence[tuple[int, datetime]],
    now: datetime,
) -> bytes:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_cert.subject)
        .last_update(now - BACKDATE)
        .next_update(now + timedelta(days=CRL_DAYS))
    )
    for serial, when in revoked:
        entry = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when)
        builder = builder.add_revoked_certificate(entry.build())
    crl = builder.sign(ca_key, hashes.SHA256())
    return crl.public_bytes(serialization.Encoding.PEM)


def load_ca(files: CaFiles) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """The CA's key and certificate, as init_ca wrote them."""
    key = serialization.load_pem_private_key(files.ca_key.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{files.ca_key} is not an ECDSA key")
    return key, x509.load_pem_x509_certificate(files.ca_cert.read_bytes())


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the certificate, as ``openssl x509 -fingerprint -sha256`` prints it."""
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def _ca_certificate(
    key: ec.EllipticCurvePrivateKey, network: str, now: datetime
) -> x509.Certificate:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "hafen"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"hafen {network.strip()} CA"),
        ]
    )
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )


def _broker_certificate(
    key: ec.EllipticCurvePrivateKey,
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    names: list[x509.GeneralName],
    now: datetime,
) -> x509.Certificate:
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "hafen"),
            x509.NameAttribute(NameOID.COMMON_NAME, str(names[0].value)[:64]),
        ]
    )
    public = key.public_key()
    return _leaf(ca_key, ca_cert, public, subject, SERVER, timedelta(days=BROKER_DAYS), now, names)


def _name(unit: str, common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "hafen"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _leaf(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    public: ec.EllipticCurvePublicKey,
    subject: x509.Name,
    usage: x509.ObjectIdentifier,
    lifetime: timedelta,
    now: datetime,
    names: list[x509.GeneralName] | None = None,
) -> x509.Certificate:
    """A certificate the CA signs for a server or a client (``usage``), never a CA."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + lifetime)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(ca_key, hashes.SHA256())


def _usage(cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
