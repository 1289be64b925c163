"""Enrolment on the Pi: ``hafen provision enrol https://hub… TOKEN``.

The device makes its own key (ECDSA P-256; it never leaves this machine), sends the hub a
certificate request with the one-time token, checks what it is answered (the certificate is
for its key, names it, and chains to the CA it was given), and writes a complete edge config
with every file it names:

    {etc}/edge.toml            the config, checked by the agent's own loader before it is kept
    {etc}/card.key             the network's card-hash key
    {etc}/mqtt-password        the device's own password at the broker
    {etc}/tls/device.key       the private key
    {etc}/tls/device.crt       its certificate from the network's CA
    {etc}/tls/ca.crt           the CA, which the broker's certificate must chain to
    {state}/                   the agent's state directory

Run as root for the agent's user (``owner``), root writes and the agent reads, as
provisioning/install.sh sets up ``/etc/hafen`` (root:hafen 0750): the config, the card key
and the password are root's, readable by the agent's group (0640), so the agent cannot change
the keys it trusts (``[hub] public_keys``). Its identity is its own: ``tls/`` (0700) and the
files in it (0600) are the agent's, which renews its certificate there itself
(edge.agent.renewal); so is the state directory (0700). Without an owner every file is the
writer's, 0600. Every file is written with its mode and owner set on the open file
(hafen.files.write_atomically): root never changes an owner by a name in a directory the
agent's user can write, where a symlink could stand in for a file of root's.

The hardware sections (``[reader]``, ``[door]``, ``[occupancy]``'s sensors) describe the
wiring, which the hub does not know: they come from ``--hardware FILE``, else from the config
already there (enrolling again keeps them), else the standard hafen wiring. They are checked
before the token is spent, so a typo in them costs no new token.
"""

from __future__ import annotations

import json
import os
import pwd
import ssl
import tomllib
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import tomli_w
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import ValidationError

from edge.agent.config import EdgeConfig
from hafen.config import ConfigError, is_loopback, validate_config
from hafen.enrolment import ENROL_PATH, EnrolmentBundle, EnrolmentRequest
from hafen.files import write_atomically

#: The most the hub's answer may be; a real one is about 4 KiB.
MAX_ANSWER_BYTES = 64 * 1024
#: The sections that describe this Pi's wiring, not its identity.
HARDWARE_SECTIONS = ("reader", "door")
#: The keys of ``[occupancy]`` that describe the sensors and the rooms they read, which the hub
#: does not know either: kept with the wiring (capacity and opening hours come from the hub).
OCCUPANCY_SENSING = ("rooms", "co2", "counter", "pir_hold_seconds", "litres_per_person_minute")
#: The standard hafen wiring (docs/edge.example.toml): a PN532 on the UART, strike on GPIO 17.
STANDARD_HARDWARE: dict[str, Any] = {
    "reader": {"path": "tty:AMA0:pn532"},
    "door": {
        "fail_mode": "secure",
        "strike": {"pin": 17, "active_high": True},
        "contact": {"pin": 27, "pull_up": True, "closed_level": "low"},
        "exit_button": {"pin": 22, "pull_up": True},
        "led": {"pin": 23},
        "buzzer": {"pin": 24},
    },
}


class EnrolmentFailed(Exception):
    """Enrolment did not happen; the message says why and what to do. Nothing was written."""


@dataclass(frozen=True)
class DevicePaths:
    """Where a Pi keeps what enrolment writes."""

    etc: Path = Path("/etc/hafen")
    state: Path = Path("/var/lib/hafen")

    @property
    def config(self) -> Path:
        return self.etc / "edge.toml"

    @property
    def tls(self) -> Path:
        return self.etc / "tls"

    @property
    def key(self) -> Path:
        return self.tls / "device.key"

    @property
    def certificate(self) -> Path:
        return self.tls / "device.crt"

    @property
    def ca(self) -> Path:
        return self.tls / "ca.crt"

    @property
    def card_key(self) -> Path:
        return self.etc / "card.key"

    @property
    def hub_ca(self) -> Path:
        """The CA the hub's HTTPS certificate is from, when it is not a public one."""
        return self.etc / "hub-ca.crt"

    @property
    def password(self) -> Path:
        return self.etc / "mqtt-password"


@dataclass(frozen=True)
class AgentUser:
    """The user the agent runs as, whom enrolment writes for: its uid and primary group."""

    name: str
    uid: int
    gid: int


def agent_user(name: str) -> AgentUser:
    """The agent's user by name, looked up before the token is spent; EnrolmentFailed if
    there is no such user or this process may not give it files (only root may)."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise EnrolmentFailed(f"there is no user {name!r} for the agent to run as") from None
    if os.geteuid() not in (0, entry.pw_uid):
        raise EnrolmentFailed(f"only root can give the files to {name}: run it with sudo")
    return AgentUser(name, entry.pw_uid, entry.pw_gid)


def hub_context(ca_file: Path | None) -> ssl.SSLContext | None:
    """Whom to trust for the hub's HTTPS certificate: only the CAs in ``ca_file`` (a PEM
    bundle, for a hub whose certificate is from a CA of its own), else the system's (None)."""
    if ca_file is None:
        return None
    try:
        return ssl.create_default_context(cafile=str(ca_file))
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        raise EnrolmentFailed(f"{ca_file} is no CA to trust the hub by: {exc}") from None


def hub_url(text: str, allow_http: bool = False) -> str:
    """The hub's base URL: https, or http only to this machine (a test) or when allowed."""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise EnrolmentFailed(f"{text!r} is not the hub's URL (such as https://hub.example.org)")
    if parts.scheme == "http" and not allow_http and not is_loopback(parts.hostname):
        raise EnrolmentFailed(
            "the hub's answer holds the network's card key: give its https:// URL"
        )
    return text.rstrip("/")


def hardware_sections(paths: DevicePaths, hardware_file: Path | None) -> dict[str, Any]:
    """The wiring: from ``hardware_file``, else the config already there, else standard."""
    source: Path | None = hardware_file
    if source is None and paths.config.is_file():
        source = paths.config
    if source is None:
        return dict(STANDARD_HARDWARE)
    try:
        table = tomllib.loads(source.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise EnrolmentFailed(f"{source}: {exc}") from None
    wiring = {name: table[name] for name in HARDWARE_SECTIONS if name in table}
    sensors = {k: v for k, v in table.get("occupancy", {}).items() if k in OCCUPANCY_SENSING}
    if sensors:
        wiring["occupancy"] = sensors
    if "door" not in wiring:
        raise EnrolmentFailed(f"{source}: has no [door] section (the strike's wiring)")
    return wiring


def compose_config(
    paths: DevicePaths,
    hardware: dict[str, Any],
    bundle: EnrolmentBundle,
    hub: str = "https://hub.example.org",
    hub_ca: bool = False,
) -> dict[str, Any]:
    """The edge config for what the hub answered and the wiring given; with release keys in
    the answer, ``[updates]`` from the hub at ``hub`` (trusted by the CA enrolment was given,
    copied beside the config, when ``hub_ca``)."""
    config: dict[str, Any] = {
        "site": {"id": bundle.site.id, "timezone": bundle.site.timezone},
        "device": {"id": bundle.device},
        "store": {"path": str(paths.state / "edge.db")},
        "cards": {"hash_key_file": str(paths.card_key)},
        **{name: hardware[name] for name in HARDWARE_SECTIONS if name in hardware},
        "mqtt": {
            "host": bundle.broker.host,
            "port": bundle.broker.port,
            "username": bundle.broker.username,
            "password_file": str(paths.password),
            "ca_file": str(paths.ca),
            "cert_file": str(paths.certificate),
            "key_file": str(paths.key),
        },
        "hub": {"public_keys": list(bundle.hub_public_keys)},
    }
    # Releases only over https (or to this machine): over a plain http hub, no updates.
    secure = hub.startswith("https://") or is_loopback(urlsplit(hub).hostname or "")
    if bundle.release_keys and secure:
        config["updates"] = {"hub_url": hub, "release_keys": list(bundle.release_keys)}
        if hub_ca:
            config["updates"]["hub_ca_file"] = str(paths.hub_ca)
    occupancy = dict(hardware.get("occupancy", {}))
    if bundle.site.capacity is not None:
        occupancy["capacity"] = bundle.site.capacity
    if bundle.site.opening_hours:
        occupancy["opening_hours"] = bundle.site.opening_hours
    if occupancy:
        config["occupancy"] = occupancy
    return config


def check_config(config: dict[str, Any], card_key: str) -> EdgeConfig:
    """Validate with the agent's own loader (the card key given inline, as the file will
    hold it); raises EnrolmentFailed naming every bad key."""
    inline = {**config, "cards": {"hash_key": card_key}}
    try:
        return validate_config(inline, EdgeConfig, source="the enrolled config")
    except ConfigError as exc:
        raise EnrolmentFailed(str(exc)) from None


def request_for(key: ec.EllipticCurvePrivateKey) -> str:
    """A certificate request for ``key``; the hub names the device itself, whatever it says."""
    subject = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "hafen device")])
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def ask_hub(
    url: str,
    request: EnrolmentRequest,
    timeout: float = 30.0,
    context: ssl.SSLContext | None = None,
) -> EnrolmentBundle:
    """POST the request to the hub and validate its answer; EnrolmentFailed says why not.
    ``context``: whom to trust for an https:// hub (hub_context); None, the system's CAs."""
    http = urllib.request.Request(
        url + ENROL_PATH,
        data=request.model_dump_json().encode(),
        headers={"Content-Type": "application/json", "Accept": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(http, timeout=timeout, context=context) as answer:
            body = answer.read(MAX_ANSWER_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise EnrolmentFailed(f"the hub refused: {_detail(exc)}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, ssl.SSLCertVerificationError):
            raise EnrolmentFailed(
                f"this device does not trust the hub's certificate at {url}"
                f" ({reason.verify_message}); if it is from a CA of your own, give that CA's"
                " certificate with --hub-ca"
            ) from None
        raise EnrolmentFailed(f"cannot reach the hub at {url}: {reason}") from None
    if len(body) > MAX_ANSWER_BYTES:
        raise EnrolmentFailed("the hub's answer is too large to be an enrolment")
    try:
        return EnrolmentBundle.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]["msg"]
        raise EnrolmentFailed(f"the hub's answer is not an enrolment: {first}") from None


def _detail(error: urllib.error.HTTPError) -> str:
    try:
        detail = json.loads(error.read(4096)).get("detail")
    except (ValueError, AttributeError, OSError):
        detail = None
    text = detail if isinstance(detail, str) else error.reason
    return f"{text} (HTTP {error.code})"


def check_bundle(bundle: EnrolmentBundle, key: ec.EllipticCurvePrivateKey) -> None:
    """The certificate is for this key, names this device, and the CA signed it."""
    try:
        cert = x509.load_pem_x509_certificate(bundle.certificate.encode())
        ca = x509.load_pem_x509_certificate(bundle.ca_certificate.encode())
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise EnrolmentFailed(f"the hub's certificate does not check out: {exc}") from None
    mine = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    theirs = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if mine != theirs:
        raise EnrolmentFailed("the hub's certificate is not for the key this device made")
    names = cert.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)
    if [n.value for n in names] != [bundle.broker.username]:
        raise EnrolmentFailed("the hub's certificate names another device")


def write_enrolment(
    paths: DevicePaths,
    key: ec.EllipticCurvePrivateKey,
    bundle: EnrolmentBundle,
    config: dict[str, Any],
    owner: AgentUser | None = None,
    hub_ca: bytes | None = None,
) -> list[Path]:
    """Write every file and make the directories, each with its owner and mode from the
    start (see the module); the config last, so an agent never starts on a config whose files
    are not there yet. Directories there already (install.sh's) are left as they are."""
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # -1 keeps the writer's: without an owner, everything is the writer's alone.
    agents = (owner.uid, owner.gid) if owner else (-1, -1)
    roots_the_agent_reads = (-1, owner.gid) if owner else (-1, -1)
    readable = 0o640 if owner else 0o600
    _make_directory(paths.etc, 0o750 if owner else 0o700, *roots_the_agent_reads)
    _make_directory(paths.tls, 0o700, *agents)
    _make_directory(paths.state, 0o700, *agents)
    files = [
        (paths.key, key_pem, 0o600, agents),
        (paths.certificate, bundle.certificate.encode(), 0o600, agents),
        (paths.ca, bundle.ca_certificate.encode(), 0o600, agents),
        (paths.card_key, bundle.card_key.encode() + b"\n", readable, roots_the_agent_reads),
        (paths.password, bundle.broker.password.encode() + b"\n", readable, roots_the_agent_reads),
        (paths.config, tomli_w.dumps(config).encode(), readable, roots_the_agent_reads),
    ]
    if hub_ca is not None:  # before the config, which names it
        files.insert(-1, (paths.hub_ca, hub_ca, readable, roots_the_agent_reads))
    for path, data, mode, (uid, gid) in files:
        write_atomically(path, data, mode, uid, gid)
    return [path for path, *_ in files]


def _make_directory(path: Path, mode: int, uid: int, gid: int) -> None:
    """Make ``path`` (if it is not there) with this mode and owner (-1: the writer's), set on
    the directory just made, opened without following a symlink."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.mkdir(mode=0o700)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        if uid != -1 or gid != -1:
            os.fchown(fd, uid, gid)
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def enrol(
    url: str,
    token: str,
    paths: DevicePaths,
    hardware_file: Path | None = None,
    owner: str | None = None,
    allow_http: bool = False,
    hub_ca: Path | None = None,
) -> tuple[EdgeConfig, list[Path]]:
    """Enrol this device (see the module): ``owner`` names the agent's user, ``hub_ca`` the
    CAs to trust the hub by. Raises EnrolmentFailed, having written nothing; what can be
    checked here is checked before the token is spent."""
    base = hub_url(url, allow_http)
    agent = agent_user(owner) if owner else None
    context = hub_context(hub_ca)
    try:
        request_token = EnrolmentRequest(token=token.strip(), csr="-")
    except ValidationError:
        raise EnrolmentFailed("that is not an enrolment token (copy it whole)") from None
    hardware = hardware_sections(paths, hardware_file)
    check_config(compose_config(paths, hardware, _PLACEHOLDER), _PLACEHOLDER.card_key)
    key = ec.generate_private_key(ec.SECP256R1())
    request = request_token.model_copy(update={"csr": request_for(key)})
    bundle = ask_hub(base, request, context=context)
    check_bundle(bundle, key)
    config = compose_config(paths, hardware, bundle, base, hub_ca is not None)
    checked = check_config(config, bundle.card_key)
    ca_pem = hub_ca.read_bytes() if hub_ca is not None else None
    return checked, write_enrolment(paths, key, bundle, config, agent, ca_pem)


#: An answer's stand-in, to check the wiring before the token is spent.
_PLACEHOLDER = EnrolmentBundle.model_validate(
    {
        "site": {"id": "site", "timezone": "Europe/Berlin"},
        "device": "device",
        "kind": "door",
        "certificate": "-",
        "ca_certificate": "-",
        "not_after": "2100-01-01T00:00:00Z",
        "hub_public_keys": ["WAIGItqD+Q+p7KxQKUaL8x/nGdxG/q7419gYeCypkuI="],
        "card_key": "0" * 64,
        "broker": {"host": "broker", "port": 8883, "username": "u", "password": "p" * 16},
    }
)
