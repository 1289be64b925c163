"""Signing in and out, who am I, and one's own API tokens (for scripts and kiosks)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel

from hub.auth import AuthError
from hub.http.deps import (
    Anyone,
    ClientAddress,
    Principals,
    SignIns,
    Store,
    TokenMaxDays,
    bearer,
)
from hub.services import users
from hub.services.users import NewToken, TokenIn, TokenOut
from hub.throttle import Throttled

router = APIRouter(prefix="/auth", tags=["auth"])


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"


class Me(BaseModel):
    username: str
    role: str
    sites: list[str]
    member: str | None = None
    company: str | None = None


@router.post("/token", response_model=Token)
def token(
    username: Annotated[str, Form(max_length=80)],
    password: Annotated[str, Form(max_length=200)],
    store: Store,
    throttle: SignIns,
    client: ClientAddress,
) -> Token:
    """Sign in with a password; the token is valid for 12 hours. After repeated failures
    further attempts get 429 with ``Retry-After`` for a while."""
    try:
        token = users.sign_in(store, throttle, username, password, client)
    except Throttled as exc:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS, str(exc), headers={"Retry-After": str(exc.seconds)}
        ) from None
    except AuthError as exc:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc)) from None
    return Token(access_token=token)


@router.get("/me", response_model=Me)
def me(who: Anyone) -> Me:
    return Me(
        username=who.username,
        role=who.role.value,
        sites=sorted(who.sites),
        member=who.member_id,
        company=who.company_id,
    )


@router.post("/sign-out", status_code=status.HTTP_204_NO_CONTENT)
def sign_out(
    who: Anyone,
    credentials: Annotated[HTTPAuthorizationCredentials, Depends(bearer)],
    store: Store,
    principals: Principals,
) -> None:
    """Revoke the token this request was made with, and the tokens made with it."""
    users.sign_out(store, credentials.credentials)
    principals.clear()


@router.get("/tokens", response_model=list[TokenOut])
def my_tokens(who: Anyone, store: Store) -> list[TokenOut]:
    """Your tokens (sign-ins and API tokens), without their secrets."""
    return users.my_tokens(store, who)


@router.post("/tokens", response_model=NewToken, status_code=status.HTTP_201_CREATED)
def new_token(body: TokenIn, who: Anyone, store: Store, max_days: TokenMaxDays) -> NewToken:
    """An API token for scripts, with your role; the token is shown this once. It ends when
    the session (or token) you make it with ends, unless you are a network admin and ask
    for one that outlives it; every token ends after the hub's maximum lifetime."""
    return users.new_token(store, who, body, max_days)


@router.delete("/tokens/{public_id}", status_code=status.HTTP_204_NO_CONTENT)
def drop_token(public_id: str, who: Anyone, store: Store, principals: Principals) -> None:
    users.drop_token(store, who, public_id)
    principals.clear()
