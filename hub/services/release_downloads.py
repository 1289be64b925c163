"""Releases as doors download them (issue 17): which device asks, and what it may fetch.

A door asks over HTTPS with a request signed by the key of its certificate
(hafen.device_requests); nothing else identifies it, since a TLS-terminating proxy in front
of the hub passes no client certificate on. The hub takes the request as a door's only if

- its signature verifies with the certificate it carries, over this method and path, made
  within ``MAX_AGE`` of the hub's clock (a captured request is stale after that);
- the certificate was issued by the network's CA and is within its validity window;
- the hub recorded that certificate (its serial) for a device whose name is the one the
  certificate holds (``site.device``, hub.pki.device_client_id), and has not revoked it;
- that device is registered, enrolled and not revoked (hub.services.renewal.standing, the
  rule certificate renewal follows too).

A request that does not show who asks is ``Unauthenticated`` (401); a device the hub knows
but no longer trusts is ``Forbidden`` (403). Which release the door may then fetch is
``downloadable``'s to say: the one place that rule lives.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import NameOID
from pydantic import ValidationError
from sqlalchemy import Engine, select

from hafen.device_requests import RequestRefused, read_signed_request
from hafen.releases import Manifest, ReleaseFile
from hafen.signing import BadSignedMessage, read_own_sealed
from hub import db
from hub.pki import device_client_id
from hub.services.errors import Forbidden, NotFound, Unauthenticated, Unavailable
from hub.services.releases import goes_back
from hub.services.renewal import standing
from hub.services.rollouts import order_for


@dataclass(frozen=True)
class DeviceReleases:
    """What the hub needs to serve releases to doors: the CA whose certificates it takes
    (``[ca] directory``'s ca.crt) and where the releases' wheels lie (``[releases]
    directory``, one directory per version)."""

    ca_certificate: x509.Certificate
    directory: Path

    @classmethod
    def load(cls, ca_certificate_file: Path, directory: Path) -> DeviceReleases:
        """Read the CA's certificate (PEM); ValueError or OSError if it is not one."""
        return cls(x509.load_pem_x509_certificate(ca_certificate_file.read_bytes()), directory)


@dataclass(frozen=True)
class Requester:
    """The device a signed request is from, and the certificate it showed (its serial)."""

    site: str
    device: str
    serial: int

    @property
    def key(self) -> tuple[str, str]:
        """The device, as rate limits count it."""
        return (self.site, self.device)


@dataclass(frozen=True)
class Downloadable:
    """A release a device may fetch: the manifest as sealed (served as is) and what it says."""

    sealed: bytes
    manifest: Manifest

    def file(self, name: str) -> ReleaseFile:
        """The manifest's entry for ``name``; NotFound for any name it does not hold, which
        is how a path from the request never reaches the disk unchecked."""
        for release_file in self.manifest.files:
            if release_file.name == name:
                return release_file
        raise NotFound(f"release {self.manifest.version} has no file {name!r}")


def requester(
    engine: Engine,
    ca_certificate: x509.Certificate,
    method: str,
    path: str,
    headers: Mapping[str, str],
    now: datetime,
) -> Requester:
    """The device whose signed request this is (see the module); Unauthenticated or
    Forbidden, with a short why, otherwise. ``path`` is the path the protocol names for
    what is asked (hafen.protocol.release_file_path), which the door signed."""
    try:
        certificate = read_signed_request(headers, method, path, now)
    except RequestRefused as exc:
        raise Unauthenticated(str(exc)) from None
    try:
        certificate.verify_directly_issued_by(ca_certificate)
    except (ValueError, TypeError, InvalidSignature):
        raise Unauthenticated("the certificate is not from this network's CA") from None
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        raise Unauthenticated("the certificate is not valid now (expired, or not yet valid)")
    serial = certificate.serial_number
    c = db.device_certificates.c
    with engine.connect() as conn:
        issued = conn.execute(
            select(c.site, c.device, c.revoked_at).where(c.serial == str(serial))
        ).one_or_none()
        if issued is None:
            raise Forbidden("the certificate is not one this hub gave a device")
        names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if [n.value for n in names] != [device_client_id(issued.site, issued.device)]:
            raise Forbidden("the certificate names another device than it was given to")
        if issued.revoked_at is not None:
            raise Forbidden("the certificate is revoked")
        try:
            standing(conn, issued.site, issued.device)
        except NotFound:  # its row went: as good as revoked
            raise Forbidden("the device is no longer registered") from None
    return Requester(issued.site, issued.device, serial)


def downloadable(engine: Engine, site: str, device: str, version: str) -> Downloadable:
    """Whether ``device`` at ``site`` may fetch release ``version``, and if so the release;
    the one place where that rule lives: only a release a rollout ordered for that device
    (Forbidden otherwise, before the release is looked up, so that a device learns nothing
    of releases not meant for it); NotFound for a release the hub does not hold.

    A door the ordering rollout takes back from a newer version gets the signed rollback
    from that version (hub.services.releases.add_rollback; same files), which its updater
    installs over exactly that version. Without one held (a rollout made before rollbacks
    were), it gets the release's own manifest, which its updater refuses and says why."""
    order = order_for(engine, site, device, version)
    if order is None:
        raise Forbidden(f"no rollout ordered release {version[:64]!r} for {site}/{device}")
    r, b = db.releases.c, db.release_rollbacks.c
    with engine.connect() as conn:
        sealed = None
        if goes_back(order.from_version, version):
            sealed = conn.scalar(
                select(b.manifest).where(
                    b.version == version, b.rollback_from == order.from_version
                )
            )
        if sealed is None:
            sealed = conn.scalar(select(r.manifest).where(r.version == version))
    if sealed is None:
        raise NotFound(f"no release {version!r}")
    try:
        body = read_own_sealed(sealed).body
        manifest = Manifest.model_validate_json(body)
    except (BadSignedMessage, ValidationError):
        raise Unavailable(f"release {version}'s manifest in the store does not read") from None
    return Downloadable(bytes(sealed), manifest)


def file_on_disk(
    releases: DeviceReleases, release: Downloadable, name: str
) -> tuple[Path, os.stat_result]:
    """Where the hub keeps ``name`` of ``release``, and its status, checked: a name the
    manifest holds (else NotFound), a plain file of the manifest's size (else Unavailable:
    the hub's copy is damaged and is not served; the door would refuse it by its hash)."""
    wanted = release.file(name)
    path = releases.directory / release.manifest.version / wanted.name
    try:
        found = path.lstat()
    except OSError:
        raise Unavailable(f"release {release.manifest.version}: {name} is missing") from None
    if not stat.S_ISREG(found.st_mode) or found.st_size != wanted.size:
        raise Unavailable(f"release {release.manifest.version}: {name} is damaged at the hub")
    return path, found
