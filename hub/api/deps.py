"""What every route needs: the store, and the signed-in caller with their role and sites."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine

from hub.auth import AuthError, Principal, Role, authenticate

_bearer = HTTPBearer(auto_error=False)


def engine(request: Request) -> Engine:
    return request.app.state.engine


def principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller, from ``Authorization: Bearer hft_...``; 401 for anything else."""
    if credentials is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "sign in first", headers={"WWW-Authenticate": "Bearer"}
        )
    try:
        return authenticate(request.app.state.engine, credentials.credentials)
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
