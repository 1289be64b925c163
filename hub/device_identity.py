"""What the hub needs to give devices an identity and take it away: the CA, the broker's
admin, what a device is told at enrolment; and the CA's revocation list, kept from the store.

Used by the enrolment and revocation services (hub.services.enrolment, .revocation) and by
certificate renewal.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import Connection, select

from hub import db
from hub.broker_rights import AdminSession, BrokerRights
from hub.pki import DEVICE_LIFETIME, CaFiles, revocation_list

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
        )


def write_revocation_list(conn: Connection, ca: CaFiles, now: datetime) -> int:
    """Rewrite the CA's revocation list with every revoked certificate not yet expired (an
    expired one is refused anyway); atomically, so the broker never reads half a list.
    Returns how many it names."""
    c = db.device_certificates.c
    rows = conn.execute(
        select(c.serial, c.revoked_at).where(c.revoked_at.is_not(None), c.not_after > now)
    ).all()
    revoked = [(int(r.serial), db.aware(r.revoked_at)) for r in rows]
    pem = revocation_list(ca, revoked, now)
    target = ca.crl
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".ca.crl.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        if target.exists():  # keep the group the broker reads it by
            with contextlib.suppress(PermissionError):
                os.chown(tmp, -1, target.stat().st_gid)
        os.replace(tmp, target)
    except BaseException:
        os.unlink(tmp)
        raise
    return len(revoked)
