"""Revocation: a device's access ends at once, and stays ended.

Two locks for the next connection:

- its client and role at the broker's dynamic-security plugin are deleted, which also drops
  the connection it has open (the device signs in with a password the plugin checks, so
  mosquitto#2999, a certificate-only client outliving its deletion, does not apply);
- its certificates go on the CA's revocation list, which the broker loads (``crlfile``) when
  it starts or reloads: a copy of the device's key and certificate is useless then.

The broker ties a password to its client, not to a certificate (mosquitto 2.0 cannot check
both): the plugin's lock is the one that holds against the password.

The hub marks the device revoked (the fleet shows it) until a technician enrols it again.
The hub's own record is committed first (ending the device's unused enrolment tokens too),
the list rewritten from it, then the broker is told: if the broker cannot be reached, the
revocation stands and says so, and running it again finishes it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel
from sqlalchemy import Engine, delete, select, update

from hub import db
from hub.auth import Principal, Role
from hub.broker_rights import BrokerRefused, device_removal
from hub.device_identity import DeviceAuthority, write_revocation_list
from hub.services.errors import NotFound
from hub.services.scope import Scope


class Revoked(BaseModel):
    site: str
    device: str
    revoked_at: datetime
    certificates: int
    #: Whether the broker deleted its client (and dropped its connection) just now.
    broker_done: bool
    #: Why not, when it did not.
    broker_error: str | None = None
    #: Why the revocation list could not be rewritten, if it could not (the next run, or
    #: the daily refresh of ``serve``, writes it).
    list_error: str | None = None


def revoke(
    engine: Engine,
    authority: DeviceAuthority,
    who: Principal,
    site: str,
    device: str,
    now: datetime | None = None,
) -> Revoked:
    """End ``device``'s access (see the module); technicians and network admins only. Running
    it again for a revoked device finishes what the broker did not do."""
    Scope(who).require_role(Role.NETWORK_ADMIN, Role.TECHNICIAN)
    now = now or datetime.now(UTC)
    c, d = db.device_certificates.c, db.devices.c
    with engine.begin() as conn:
        found = conn.execute(
            select(d.revoked_at).where(d.site == site, d.id == device).with_for_update()
        ).one_or_none()
        if found is None:
            raise NotFound(f"no device {device!r} at {site!r}")
        revoked_at = db.aware(found.revoked_at) or now
        conn.execute(
            update(db.devices).where(d.site == site, d.id == device).values(revoked_at=revoked_at)
        )
        certificates = conn.execute(
            update(db.device_certificates)
            .where(c.site == site, c.device == device, c.revoked_at.is_(None))
            .values(revoked_at=now)
        ).rowcount
        # A token made before would give the access back: revoking ends them too.
        t = db.enrolment_tokens.c
        conn.execute(delete(db.enrolment_tokens).where(t.site == site, t.device == device))
    list_error = None
    try:  # after the commit: the list is built from what the store holds
        write_revocation_list(engine, authority.ca, now)
    except OSError as exc:
        list_error = str(exc)
    done, error = True, None
    try:
        with authority.rights() as rights:
            rights.remove(device_removal(site, device))
    except (OSError, BrokerRefused) as exc:
        done, error = False, str(exc)
    return Revoked(
        site=site,
        device=device,
        revoked_at=revoked_at,
        certificates=certificates,
        broker_done=done,
        broker_error=error,
        list_error=list_error,
    )
