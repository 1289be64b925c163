"""Certificate renewal: an enrolled door gets a new certificate without a technician.

A device's certificate is valid for 90 days (hub.pki.DEVICE_DAYS). With a third of its life
left, the door makes a new key and asks on its own topic (``.../renew``); the broker lets only
the door itself publish there. ``hafen hub serve`` takes the requests
(hub.services.renewal_desk) and has these rules decide:

- only a device that is registered, enrolled and not revoked gets a certificate;
- at most one renewal per device per ``window`` (an hour), counted from the store, so a door
  that asks again and again, or a hub that restarts, issues no more; the enrolment that gave
  the device its identity does not count (a door enrolled a moment ago may renew at once);
- the request goes through the CA's own checks (hub.pki), and the certificate names the device
  as the hub knows it, whatever the request says.

The certificate is recorded like an enrolment's, but the device's older certificates are *not*
revoked: the door is still connected with the old one until it has the new one, and switching
is up to it. They are left to expire (at most 30 days later, as renewal starts with a third of
90 days left), for three reasons: the broker also asks each door its own password, which the
renewal does not change and which is good only with that door's client id; the door deletes
the old key once it has switched; and revoking a door (hub.services.revocation) puts every one
of its certificates on the revocation list at once, the old ones too.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from cryptography import x509
from sqlalchemy import Connection, Engine, func, insert, select

from hub import db
from hub.device_identity import DeviceAuthority
from hub.pki import RequestRefused, issue_device_certificate
from hub.services.errors import Conflict, Forbidden, Invalid, NotFound

#: At most one renewal per device in this long.
RENEWAL_WINDOW = timedelta(hours=1)


def standing(conn: Connection, site: str, device: str, lock: bool = False) -> datetime:
    """When ``device`` enrolled, if it may have a certificate now: NotFound for a device the
    hub has not registered, Forbidden for one not enrolled or revoked. ``lock``: hold its row
    to the end of the transaction (an enrolment or revocation waits)."""
    d = db.devices.c
    query = select(d.enrolled_at, d.revoked_at).where(d.site == site, d.id == device)
    found = conn.execute(query.with_for_update() if lock else query).one_or_none()
    if found is None:
        raise NotFound(f"no device {device!r} at {site!r}")
    if found.revoked_at is not None:
        raise Forbidden("the device is revoked: a technician must enrol it again")
    if found.enrolled_at is None:
        raise Forbidden("the device has not enrolled")
    return db.aware(found.enrolled_at)


def renew(
    engine: Engine,
    authority: DeviceAuthority,
    site: str,
    device: str,
    csr_pem: bytes,
    window: timedelta = RENEWAL_WINDOW,
    now: datetime | None = None,
) -> x509.Certificate:
    """Issue ``device`` a new certificate for the key of its request and record it (see the
    module). NotFound for a device the hub has not registered, Forbidden for one not enrolled
    or revoked, Conflict for a second renewal within ``window``, Invalid for a request the CA
    does not take. Only success changes the store."""
    now = now or datetime.now(UTC)
    c = db.device_certificates.c
    with engine.begin() as conn:
        enrolled_at = standing(conn, site, device, lock=True)
        last = db.aware(
            conn.scalar(
                select(func.max(c.issued_at)).where(
                    c.site == site, c.device == device, c.issued_at > enrolled_at
                )
            )
        )
        if last is not None and now - last < window:
            raise Conflict(
                f"the device renewed its certificate {int((now - last).total_seconds())} s ago;"
                f" once per {int(window.total_seconds())} s"
            )
        try:
            cert = issue_device_certificate(
                authority.ca, csr_pem, site, device, authority.device_lifetime, now
            )
        except RequestRefused as exc:
            raise Invalid(f"the certificate request: {exc}") from None
        conn.execute(
            insert(db.device_certificates).values(
                serial=str(cert.serial_number),
                site=site,
                device=device,
                issued_at=now,
                not_after=cert.not_valid_after_utc,
            )
        )
    return cert


def certificate_expiry(
    conn: Connection, sites: Iterable[str] | None = None
) -> dict[tuple[str, str], datetime]:
    """When each device's newest certificate ends, by (site, device), for the fleet: a door
    that has not renewed shows it coming. Revoked certificates are left out (a revoked device
    has none); ``sites`` narrows it to those sites. On the caller's connection: the fleet
    reads it in the same snapshot as the rest of its rows."""
    c = db.device_certificates.c
    query = select(c.site, c.device, c.issued_at, c.not_after).where(c.revoked_at.is_(None))
    if sites is not None:
        query = query.where(c.site.in_(list(sites)))
    newest: dict[tuple[str, str], tuple[datetime, datetime]] = {}
    for row in conn.execute(query):
        issued, ends = db.aware(row.issued_at), db.aware(row.not_after)
        key = (row.site, row.device)
        if key not in newest or issued > newest[key][0]:
            newest[key] = (issued, ends)
    return {key: ends for key, (_issued, ends) in newest.items()}
