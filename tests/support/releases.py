"""A hub that serves releases to doors, for the download tests on both sides: the network's
CA made by hub.pki (as `hafen hub init-ca` makes it), doors whose certificates the CA issued
and the store recorded as enrolment does, releases added as `hafen hub release add` adds
them, and the real application served by uvicorn, over HTTP on loopback or over HTTPS with a
server certificate from the same CA."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, insert, update
from starlette.types import ASGIApp, Receive, Scope, Send

from hafen.releases import Manifest, open_manifest
from hub import db
from hub.app import create_app
from hub.http.downloads import DownloadGate, DownloadLimits
from hub.pki import DEVICE_LIFETIME, CaFiles, issue_device_certificate
from hub.services.release_downloads import DeviceReleases
from hub.services.releases import add_release, add_rollback
from tests.support.enrolling import served
from tests.support.tls import make_ca, request_for

RELEASE_KEY = Ed25519PrivateKey.generate()
SITE = "leipzig-ost"


@dataclass(frozen=True)
class Door:
    """A door's identity as enrolment leaves it on the Pi: its key and certificate, also as
    files (PEM)."""

    site: str
    device: str
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate
    key_file: Path
    cert_file: Path


def write_identity(
    directory: Path, name: str, key: ec.EllipticCurvePrivateKey, certificate: x509.Certificate
) -> tuple[Path, Path]:
    """The key and certificate as PEM files in ``directory``: (key file, certificate file)."""
    directory.mkdir(parents=True, exist_ok=True)
    key_file, cert_file = directory / f"{name}.key", directory / f"{name}.crt"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return key_file, cert_file


class Counted:
    """The paths of the requests the server got, in order."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    def to(self, path: str) -> int:
        return self.paths.count(path)


class ReleaseHub:
    """The hub's store, CA and releases directory, with the site ``SITE`` registered."""

    def __init__(self, root: Path, engine: Engine) -> None:
        self.root, self.engine = root, engine
        self.ca = make_ca(root, "ca", "localhost", "127.0.0.1")
        self.directory = root / "releases"
        self.doors: list[Door] = []
        with engine.begin() as conn:
            conn.execute(insert(db.sites).values(id=SITE, timezone="Europe/Berlin"))

    def door(
        self,
        device: str,
        ca: CaFiles | None = None,
        lifetime: timedelta = DEVICE_LIFETIME,
        now: datetime | None = None,
        recorded: bool = True,
    ) -> Door:
        """A door enrolled as enrolment leaves it: registered, enrolled, its certificate
        (from ``ca``, the network's by default) recorded (unless ``recorded`` is False)."""
        now = now or datetime.now(UTC)
        key = ec.generate_private_key(ec.SECP256R1())
        certificate = issue_device_certificate(
            ca or self.ca, request_for(key, "a door"), SITE, device, lifetime, now
        )
        with self.engine.begin() as conn:
            conn.execute(
                insert(db.devices).values(
                    site=SITE, id=device, kind="door", created_at=now, enrolled_at=now
                )
            )
            if recorded:
                conn.execute(
                    insert(db.device_certificates).values(
                        serial=str(certificate.serial_number),
                        site=SITE,
                        device=device,
                        issued_at=now,
                        not_after=certificate.not_valid_after_utc,
                    )
                )
        key_file, cert_file = write_identity(self.root / "pi" / device, device, key, certificate)
        door = Door(SITE, device, key, certificate, key_file, cert_file)
        self.doors.append(door)
        return door

    def revoke_certificate(self, door: Door) -> None:
        c = db.device_certificates.c
        with self.engine.begin() as conn:
            conn.execute(
                update(db.device_certificates)
                .where(c.serial == str(door.certificate.serial_number))
                .values(revoked_at=datetime.now(UTC))
            )

    def revoke_device(self, door: Door) -> None:
        d = db.devices.c
        with self.engine.begin() as conn:
            conn.execute(
                update(db.devices)
                .where(d.site == door.site, d.id == door.device)
                .values(revoked_at=datetime.now(UTC))
            )

    def add_release(
        self, version: str, wheels: dict[str, bytes] | None = None, ordered: bool = True
    ) -> Manifest:
        """Add ``version`` with the given wheels (a hafen wheel and a dependency of a few
        hundred KiB by default); the manifest the hub signed. ``ordered``: a rollout has
        ordered it for every door made so far (what a door may download)."""
        house = self.root / f"wheels-{version}"
        house.mkdir(parents=True)
        wheels = wheels or {
            f"hafen-{version}-py3-none-any.whl": b"hafen " + version.encode() * 1000,
            "paho_mqtt-2.1.0-py3-none-any.whl": bytes(range(256)) * 1500,
        }
        for name, data in wheels.items():
            (house / name).write_bytes(data)
        add_release(self.engine, self.directory, house, version, RELEASE_KEY)
        with self.engine.connect() as conn:
            sealed = conn.scalar(
                db.releases.select()
                .with_only_columns(db.releases.c.manifest)
                .where(db.releases.c.version == version)
            )
        assert sealed is not None
        if ordered:
            self.order(version)
        return open_manifest(sealed, [RELEASE_KEY.public_key()])

    def add_rollback(self, version: str, rollback_from: str) -> Manifest:
        """A rollback to the held release ``version`` from ``rollback_from``, made as
        `hafen hub release rollback` makes it; the manifest the hub signed."""
        add_rollback(self.engine, self.directory, version, rollback_from, RELEASE_KEY, "cli:t")
        b = db.release_rollbacks.c
        with self.engine.connect() as conn:
            sealed = conn.scalar(
                db.release_rollbacks.select()
                .with_only_columns(b.manifest)
                .where(b.version == version, b.rollback_from == rollback_from)
            )
        assert sealed is not None
        return open_manifest(sealed, [RELEASE_KEY.public_key()])

    def order(
        self, version: str, doors: list[Door] | None = None, from_version: str | None = None
    ) -> None:
        """A rollout of ``version`` that has ordered ``doors`` (every door made so far by
        default), each running ``from_version`` when it was made (not known: None), as the
        hub's rollout driver leaves it in the store."""
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            rollout = conn.scalar(
                insert(db.rollouts)
                .returning(db.rollouts.c.id)
                .values(
                    version=version,
                    target={},
                    stages="100%",
                    stage_count=1,
                    stage=1,
                    deadline_minutes=30,
                    state="running",
                    created_by="nadia",
                    created_at=now,
                    updated_at=now,
                )
            )
            for door in self.doors if doors is None else doors:
                conn.execute(
                    insert(db.rollout_devices).values(
                        rollout_id=rollout,
                        site=door.site,
                        device=door.device,
                        stage=1,
                        step="ordered",
                        from_version=from_version,
                        ordered_at=now,
                        last_order_at=now,
                    )
                )

    def kept(self, version: str, name: str) -> Path:
        """Where the hub keeps a release's file."""
        return self.directory / version / name

    @contextmanager
    def served(self, https: bool = False, limits: DownloadLimits | None = None) -> Iterator[Served]:
        """The real application served by uvicorn for the block. ``https``: with the
        broker's certificate from the same CA (it names localhost), as a hub behind no
        public CA would answer."""
        releases = DeviceReleases.load(self.ca.ca_cert, self.directory)
        app = create_app(self.engine, device_releases=releases, download_limits=limits)
        counted = Counted()
        app.add_middleware(_Recording, counted=counted)
        options = {}
        if https:
            options = {
                "ssl_certfile": str(self.ca.broker_cert),
                "ssl_keyfile": str(self.ca.broker_key),
            }
        with served(app, **options) as url:
            if https:
                url = url.replace("http://127.0.0.1", "https://localhost")
            yield Served(url, counted, app.state.downloads)


@dataclass(frozen=True)
class Served:
    """A served hub: its URL, the requests it got, and its download gate."""

    url: str
    requests: Counted
    downloads: DownloadGate


class _Recording:
    """Middleware that hands each request's path to a ``Counted``."""

    def __init__(self, app: ASGIApp, counted: Counted) -> None:
        self.app, self.counted = app, counted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.counted.paths.append(scope["path"])
        await self.app(scope, receive, send)
