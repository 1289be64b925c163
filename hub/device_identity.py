"""What the hub needs to give devices an identity and take it away: the CA, the broker's
admin, what a device is told at enrolment; and the CA's revocation list, kept from the store.

Used by the enrolment and revocation services (hub.services.enrolment, .revocation) and by
certificate renewal.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, select

from hafen.files import write_atomically
from hub import db
from hub.broker_rights import AdminSession, BrokerRights
from hub.pki import DEVICE_LIFETIME, CaFiles, revocation_list

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from hub.settings import HubSettings


@dataclass(frozen=True)
class DeviceAuthority:
    """What the hub needs to give devices their identity, and what it tells them.

    ``rights`` lends the admin connection to the broker's dynamic-security plugin for one
    sequence of commands (``with authority.rights() as rights: ...``;
    hub.broker_rights.AdminSession). ``broker_host``/``broker_port``: where the
    devices reach the broker, which may differ from where the hub does.
    ``device_lifetime``: how long the certificates it gives devices (at enrolment and renewal)
    are valid; 90 days, shorter only in tests that watch a device renew."""

    ca: CaFiles
    rights: Callable[[], AbstractContextManager[BrokerRights]]
    broker_host: str
    broker_port: int
    public_keys: tuple[str, ...]
    card_key: bytes
    device_lifetime: timedelta = DEVICE_LIFETIME
    #: The release keys' public halves a door is told to trust for updates (none: it is
    #: enrolled without ``[updates]``).
    release_keys: tuple[str, ...] = ()

    @classmethod
    def from_settings(
        cls, settings: HubSettings, signing_key: Ed25519PrivateKey | None, card_key: bytes | None
    ) -> DeviceAuthority | None:
        """The hub's authority as its settings give it; None unless all it needs is there
        (the CA, the broker's admin and TLS, the signing and card keys). Reads the admin's
        password (a ConfigError names the key)."""
        broker = settings.broker
        directory = settings.ca.directory
        if None in (directory, broker.admin, broker.tls, signing_key, card_key):
            return None
        assert directory is not None and signing_key is not None and card_key is not None
        from hafen.signing import public_key_text

        session = AdminSession(broker.host, broker.port, broker.login("admin"))
        return cls(
            ca=CaFiles(directory),
            rights=session.rights,
            broker_host=broker.device_host or broker.host,
            broker_port=broker.device_port or broker.port,
            public_keys=(public_key_text(signing_key),),
            card_key=card_key,
            release_keys=tuple(settings.releases.public_keys),
        )


def write_revocation_list(engine: Engine, ca: CaFiles, now: datetime | None = None) -> int:
    """Rewrite the CA's revocation list with every revoked certificate not yet expired (an
    expired one is refused anyway), from what the store has *committed*: call it after the
    transaction that revoked. Processes writing at once (the API, ``hafen provision``, the
    daily refresh) take turns under a lock on the CA's directory, so the last to write read
    the store after every other's commit and names them all. The file is replaced atomically
    (the broker never reads half a list) and keeps the group the broker reads it by. Returns
    how many certificates it names."""
    now = now or datetime.now(UTC)
    c = db.device_certificates.c
    with _exclusive(ca.directory / ".ca.crl.lock"):
        with engine.connect() as conn:
            rows = conn.execute(
                select(c.serial, c.revoked_at).where(c.revoked_at.is_not(None), c.not_after > now)
            ).all()
        revoked = [(int(r.serial), db.aware(r.revoked_at)) for r in rows]
        pem = revocation_list(ca, revoked, now)
        gid = ca.crl.stat().st_gid if ca.crl.exists() else -1
        try:
            write_atomically(ca.crl, pem, 0o644, gid=gid)
        except PermissionError:  # not in the broker's group: the list is world-readable
            write_atomically(ca.crl, pem, 0o644)
    return len(revoked)


@contextlib.contextmanager
def _exclusive(lock: Path) -> Iterator[None]:
    # Read-only, and readable by all: whoever writes the list first (root, running
    # `hafen provision device revoke`) must not lock the hub's user out of it for good.
    fd = os.open(lock, os.O_RDONLY | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # and with it the lock


class RevocationListKeeper:
    """Rewrites the revocation list at start and every ``every``: a list is valid for
    CRL_DAYS, and a broker refuses every client certificate once its list has expired, so a
    network where nobody was revoked for a month must not lock itself out (``serve`` runs
    one; systemd's ``hafen-broker-crl.path`` has the broker reload it)."""

    def __init__(self, engine: Engine, ca: CaFiles, every: timedelta = timedelta(hours=24)):
        self.engine, self.ca, self.every = engine, ca, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="crl-keeper", daemon=True)

    def start(self) -> RevocationListKeeper:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while True:
            try:
                write_revocation_list(self.engine, self.ca)
            except Exception:  # the next round tries again; the list is valid for weeks
                log.exception("the revocation list could not be rewritten")
            if self._stop.wait(self.every.total_seconds()):
                return
