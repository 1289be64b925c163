"""What every route needs: the store, and the signed-in caller with their role and sites."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Connection, Engine, select

from hub import db
from hub.auth import AuthError, Principal, Role, authenticate

bearer = HTTPBearer(auto_error=False)
#: How long a resolved token is trusted without asking the store again. A change made through
#: this hub takes effect at once (the cache is cleared); one made through another replica
#: within this many seconds.
PRINCIPAL_TTL = 5.0


class PrincipalCache:
    """Resolved bearer tokens for a few seconds: a busy read endpoint skips the token query."""

    def __init__(self, ttl: float = PRINCIPAL_TTL, size: int = 10_000) -> None:
        self.ttl, self.size = ttl, size
        self._entries: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()
        self._generation = 0  # bumped by clear(): a lookup that raced it is not stored

    def get(self, engine: Engine, token: str) -> Principal:
        now = time.monotonic()
        hit = self._entries.get(token)
        if hit is not None and hit[0] > now:
            return hit[1]
        generation = self._generation
        who = authenticate(engine, token)  # raises AuthError: never cached
        until = now + self.ttl
        if who.expires_at is not None:  # never past the token's own end
            until = min(until, now + (who.expires_at - datetime.now(UTC)).total_seconds())
        with self._lock:
            if generation != self._generation:
                return who  # a user or token changed meanwhile: answer, but do not keep it
            if len(self._entries) >= self.size:
                self._entries.clear()
            self._entries[token] = (until, who)
        return who

    def clear(self) -> None:
        """Forget everything: a user, role or token changed."""
        with self._lock:
            self._generation += 1
            self._entries.clear()


def client_address(request: Request) -> str:
    """The address a request came from, as the server saw it (a proxy's, unless trusted)."""
    return request.client.host if request.client is not None else "unknown"


def engine(request: Request) -> Engine:
    return request.app.state.engine


def principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """The caller, from ``Authorization: Bearer hft_...``; 401 for anything else."""
    if credentials is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "sign in first", headers={"WWW-Authenticate": "Bearer"}
        )
    try:
        return request.app.state.principals.get(request.app.state.engine, credentials.credentials)
    except AuthError as exc:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, str(exc), headers={"WWW-Authenticate": "Bearer"}
        ) from None


def allow(*roles: Role) -> Callable[[Principal], Principal]:
    """A dependency that lets only the given roles through (403 for the others)."""

    def check(who: Annotated[Principal, Depends(principal)]) -> Principal:
        if who.role not in roles:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "your role may not do this")
        return who

    return check


def require_site(who: Principal, site: str) -> None:
    """Operators of other sites learn nothing, not even that the site exists: 404."""
    if who.role == Role.TECHNICIAN:
        return
    if not who.may_see_site(site):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no site {site!r}")


Store = Annotated[Engine, Depends(engine)]
Caller = Annotated[Principal, Depends(principal)]
Admin = Annotated[Principal, Depends(allow(Role.NETWORK_ADMIN))]


def site_zone(conn: Connection, who: Principal, site: str) -> ZoneInfo:
    """The time zone of a site the caller may read people's presence at: 403 for
    technicians, 404 for another operator's site or none at all."""
    if who.role == Role.TECHNICIAN:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "your role may not do this")
    require_site(who, site)
    zone = conn.scalar(select(db.sites.c.timezone).where(db.sites.c.id == site))
    if zone is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no site {site!r}")
    return ZoneInfo(zone)
