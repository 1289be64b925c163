"""Enrolment: a device gets its identity with a one-time token, its key born where it runs.

1. A technician (or a network admin) registers a device and gets a token (``start``): 256
   random bits (``new_token``), shown once, kept only as its SHA-256, valid for an hour by
   default. A newer token for the same device ends the older ones.
2. On the Pi, ``hafen provision enrol`` makes the device's key, and sends a certificate
   request with the token (``redeem``). In one transaction the hub claims the token, has the
   CA sign the request, records the certificate (revoking the device's earlier ones: a new Pi,
   or the same one enrolled again) and gives the device its own client and role at the broker,
   with a new password. Anything that fails rolls all of it back and leaves the token unused:
   a bad request or an unreachable broker can be tried again; a used, expired or unknown token
   is refused and changes nothing.
3. The device is told everything its config needs (``EnrolmentBundle``): its certificate and
   the CA's, the hub's list-signing keys, the network's card key, the broker's address and its
   password, and its site's settings. The private key never leaves the Pi.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives import serialization
from pydantic import BaseModel, ValidationError
from sqlalchemy import Connection, Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from hafen.enrolment import BrokerAccess, EnrolmentBundle, EnrolmentRequest, SiteSettings
from hub import db
from hub.auth import Principal, Role
from hub.broker_rights import BrokerRefused, device_client, device_rights
from hub.device_identity import DeviceAuthority, write_revocation_list
from hub.pki import RequestRefused, issue_device_certificate
from hub.services.errors import Conflict, Forbidden, Invalid, NotFound, Unavailable
from hub.services.scope import Scope
from hub.services.sites import DeviceIn

log = logging.getLogger(__name__)

#: How long a token is valid unless the technician says otherwise, and the bounds they may set.
TOKEN_LIFETIME = timedelta(hours=1)
MIN_LIFETIME, MAX_LIFETIME = timedelta(minutes=5), timedelta(days=7)
#: The one answer for a token the hub does not know, whatever the reason.
UNKNOWN_TOKEN = "not an enrolment token of this hub (mistyped, or replaced by a newer one)"


class EnrolmentTicket(BaseModel):
    """A device registered for enrolment and its one-time token (shown only now)."""

    site: str
    device: str
    token: str
    expires_at: datetime


def new_token() -> str:
    """256 random bits in lower-case base32 (52 characters of a-z and 2-7): nothing a shell
    or a command line reads otherwise (a urlsafe token may start with "-", an option to
    ``hafen provision enrol``), easy to read out, and it fits a small QR code."""
    return base64.b32encode(secrets.token_bytes(32)).decode().rstrip("=").lower()


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start(
    engine: Engine,
    who: Principal,
    site: str,
    device_id: str,
    kind: str = "door",
    lifetime: timedelta = TOKEN_LIFETIME,
    now: datetime | None = None,
) -> EnrolmentTicket:
    """Register the device at ``site`` (if it is not yet) and give a one-time token for it;
    earlier tokens of the device end. Technicians and network admins only."""
    Scope(who).require_role(Role.NETWORK_ADMIN, Role.TECHNICIAN)
    try:
        device = DeviceIn(id=device_id, kind=kind)
    except ValidationError as exc:
        problem = exc.errors()[0]
        raise Invalid(f"{problem['loc'][0]}: {problem['msg']}") from None
    if not MIN_LIFETIME <= lifetime <= MAX_LIFETIME:
        minutes = (MIN_LIFETIME // timedelta(minutes=1), MAX_LIFETIME // timedelta(minutes=1))
        asked = lifetime / timedelta(minutes=1)
        raise Invalid(
            f"valid_minutes: a token is valid {minutes[0]} to {minutes[1]} minutes, not {asked:g}"
        )
    now = now or datetime.now(UTC)
    try:
        return _register(engine, who, site, device, lifetime, now)
    except IntegrityError:  # registered by another request at the same moment
        raise Conflict(f"device {device.id!r} was registered a moment ago; try again") from None


def _register(
    engine: Engine, who: Principal, site: str, device: DeviceIn, lifetime: timedelta, now: datetime
) -> EnrolmentTicket:
    token = new_token()
    d, t = db.devices.c, db.enrolment_tokens.c
    with engine.begin() as conn:
        if conn.scalar(select(db.sites.c.id).where(db.sites.c.id == site)) is None:
            raise NotFound(f"no site {site!r}")
        known = conn.scalar(select(d.kind).where(d.site == site, d.id == device.id))
        if known is None:
            conn.execute(
                insert(db.devices).values(site=site, id=device.id, kind=device.kind, created_at=now)
            )
        elif known != device.kind:
            raise Invalid(f"device {device.id!r} is registered as a {known}, not a {device.kind}")
        conn.execute(delete(db.enrolment_tokens).where(t.site == site, t.device == device.id))
        conn.execute(
            insert(db.enrolment_tokens).values(
                token_hash=token_hash(token),
                site=site,
                device=device.id,
                created_by=who.username,
                created_at=now,
                expires_at=now + lifetime,
            )
        )
    return EnrolmentTicket(site=site, device=device.id, token=token, expires_at=now + lifetime)


def redeem(
    engine: Engine,
    authority: DeviceAuthority,
    request: EnrolmentRequest,
    now: datetime | None = None,
) -> EnrolmentBundle:
    """Enrol the device the token was given for (see the module's steps); Forbidden for a
    used, expired or unknown token, Invalid for a request the CA does not take, Unavailable
    when the broker does not take the device's rights. Only success uses the token."""
    now = now or datetime.now(UTC)
    t = db.enrolment_tokens.c
    hashed = token_hash(request.token)
    with engine.begin() as conn:
        ticket = conn.execute(
            select(db.enrolment_tokens).where(t.token_hash == hashed).with_for_update()
        ).one_or_none()
        if ticket is None:
            raise Forbidden(UNKNOWN_TOKEN)
        if ticket.used_at is not None:
            raise Forbidden(
                f"this enrolment token was used at {db.aware(ticket.used_at):%Y-%m-%d %H:%M} UTC;"
                " ask for a new one"
            )
        if db.aware(ticket.expires_at) <= now:
            raise Forbidden(
                f"this enrolment token expired at {db.aware(ticket.expires_at):%Y-%m-%d %H:%M}"
                " UTC; ask for a new one"
            )
        claimed = conn.execute(
            update(db.enrolment_tokens)
            .where(t.token_hash == hashed, t.used_at.is_(None))
            .values(used_at=now)
        ).rowcount
        if claimed != 1:  # another request took it a moment ago
            raise Forbidden("this enrolment token was used a moment ago; ask for a new one")
        site, device = ticket.site, ticket.device
        d = db.devices.c  # a renewal or revocation of the device waits for this, or it for them
        conn.execute(select(d.id).where(d.site == site, d.id == device).with_for_update())
        try:
            csr = request.csr.encode()
            cert = issue_device_certificate(
                authority.ca, csr, site, device, authority.device_lifetime, now
            )
        except RequestRefused as exc:
            raise Invalid(f"the certificate request: {exc}") from None
        not_after = cert.not_valid_after_utc
        kind, replaced = _record(conn, site, device, cert.serial_number, not_after, now)
        password = secrets.token_urlsafe(32)
        _grant(authority, site, device, password)
        settings = _site_settings(conn, site)
    if replaced:  # the earlier certificates, from what is now committed
        try:
            write_revocation_list(engine, authority.ca, now)
        except OSError:  # their password is replaced already; the daily refresh writes it
            log.exception("the revocation list could not be rewritten after enrolment")
    pem = serialization.Encoding.PEM
    return EnrolmentBundle(
        site=settings,
        device=device,
        kind=kind,
        certificate=cert.public_bytes(pem).decode(),
        ca_certificate=authority.ca.ca_cert.read_text(),
        not_after=cert.not_valid_after_utc,
        hub_public_keys=list(authority.public_keys),
        release_keys=list(authority.release_keys),
        card_key=authority.card_key.hex(),
        broker=BrokerAccess(
            host=authority.broker_host,
            port=authority.broker_port,
            username=device_client(site, device),
            password=password,
        ),
    )


def _record(
    conn: Connection, site: str, device: str, serial: int, not_after: datetime, now: datetime
) -> tuple[str, int]:
    """Record the certificate and the enrolment; the device's earlier certificates end (the
    broker refuses them already: their password is replaced). Returns the device's kind and
    how many earlier certificates ended."""
    c, d = db.device_certificates.c, db.devices.c
    replaced = conn.execute(
        update(db.device_certificates)
        .where(c.site == site, c.device == device, c.revoked_at.is_(None))
        .values(revoked_at=now)
    ).rowcount
    conn.execute(
        insert(db.device_certificates).values(
            serial=str(serial), site=site, device=device, issued_at=now, not_after=not_after
        )
    )
    conn.execute(
        update(db.devices)
        .where(d.site == site, d.id == device)
        .values(enrolled_at=now, revoked_at=None)
    )
    kind = conn.scalar(select(d.kind).where(d.site == site, d.id == device))
    if kind is None:  # deleted since the token was made
        raise NotFound(f"device {device!r} is no longer registered at {site!r}")
    return str(kind), replaced


def _grant(authority: DeviceAuthority, site: str, device: str, password: str) -> None:
    try:
        with authority.rights() as rights:
            rights.replace(device_rights(site, device, password))
    except (OSError, BrokerRefused) as exc:
        raise Unavailable(
            f"the broker did not take the device's rights ({exc}); the token stays valid"
        ) from None


def _site_settings(conn: Connection, site: str) -> SiteSettings:
    s = db.sites.c
    row = conn.execute(
        select(s.id, s.timezone, s.capacity, s.opening_hours).where(s.id == site)
    ).one()
    return SiteSettings(
        id=row.id, timezone=row.timezone, capacity=row.capacity, opening_hours=row.opening_hours
    )
