"""Hub users and API tokens: admins manage users and their sites; everyone manages their own
tokens (for scripts and kiosks) and signs out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from hafen.ids import Slug
from hub import db
from hub.api.deps import Admin, Caller, Store, bearer
from hub.auth import (
    MIN_PASSWORD_LENGTH,
    Role,
    create_user,
    issue_token,
    list_tokens,
    public_id,
    revoke_token,
    revoke_token_id,
    update_user,
)

router = APIRouter(tags=["users"])
Password = Annotated[str, Field(min_length=MIN_PASSWORD_LENGTH, max_length=200)]


class UserOut(BaseModel):
    username: str
    role: Role
    sites: list[str] = Field(default_factory=list)
    disabled: bool = False


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._@-]{1,79}$")]
    password: Password
    role: Role
    sites: list[Slug] = Field(default_factory=list)

    @model_validator(mode="after")
    def _sites_for_operators(self) -> UserIn:
        if self.sites and self.role != Role.SITE_OPERATOR:
            raise ValueError("only site operators are given sites")
        return self


class UserChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role | None = None
    sites: list[Slug] | None = None
    disabled: bool | None = None
    password: Password | None = None


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=80)]
    days: Annotated[int, Field(ge=1, le=366)] | None = 90


class TokenOut(BaseModel):
    id: str
    name: str
    created_at: datetime
    expires_at: datetime | None


class NewToken(TokenOut):
    token: str = Field(description="Shown once; the hub keeps only its hash.")


def _users(conn, username: str | None = None) -> list[UserOut]:
    query = select(db.users).order_by(db.users.c.username)
    if username is not None:
        query = query.where(db.users.c.username == username)
    sites: dict[int, list[str]] = {}
    for row in conn.execute(select(db.user_sites).order_by(db.user_sites.c.site_id)):
        sites.setdefault(row.user_id, []).append(row.site_id)
    return [
        UserOut(username=u.username, role=u.role, sites=sites.get(u.id, []), disabled=u.disabled)
        for u in conn.execute(query)
    ]


def _check_sites(conn, sites: list[str]) -> None:
    known = set(conn.scalars(select(db.sites.c.id).where(db.sites.c.id.in_(sites))))
    if missing := sorted(set(sites) - known):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"no site {missing[0]!r}")


@router.get("/users", response_model=list[UserOut])
def users(store: Store, _: Admin) -> list[UserOut]:
    with store.connect() as conn:
        return _users(conn)


@router.post("/users", response_model=UserOut, status_code=status.HTTP_201_CREATED)
def add_user(body: UserIn, store: Store, _: Admin) -> UserOut:
    """Add a user; an operator is given the sites they run."""
    with store.connect() as conn:
        _check_sites(conn, body.sites)
    try:
        create_user(store, body.username, body.password, body.role, body.sites)
    except IntegrityError:
        raise HTTPException(status.HTTP_409_CONFLICT, f"user {body.username!r} exists") from None
    return UserOut(username=body.username, role=body.role, sites=sorted(body.sites))


@router.patch("/users/{username}", response_model=UserOut)
def change_user(
    username: str, body: UserChange, request: Request, store: Store, _: Admin
) -> UserOut:
    """Change a user's role, sites, password or disable them; disabling or a new password
    signs them out everywhere. The last active network admin cannot be demoted or disabled."""
    with store.connect() as conn:
        found = _users(conn, username)
        if not found:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no user {username!r}")
        _check_sites(conn, body.sites or [])
        role = body.role or found[0].role
        if body.sites and role != Role.SITE_OPERATOR:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT, "only site operators are given sites"
            )
        losing_admin = found[0].role == Role.NETWORK_ADMIN and (
            role != Role.NETWORK_ADMIN or body.disabled
        )
        admins = conn.scalar(
            select(func.count())
            .select_from(db.users)
            .where(db.users.c.role == Role.NETWORK_ADMIN.value, db.users.c.disabled.is_(False))
        )
    if losing_admin and admins <= 1:
        raise HTTPException(status.HTTP_409_CONFLICT, "this is the last network admin")
    update_user(
        store,
        username,
        role=body.role,
        sites=[] if body.role and body.role != Role.SITE_OPERATOR else body.sites,
        disabled=body.disabled,
        password=body.password,
    )
    request.app.state.principals.clear()
    with store.connect() as conn:
        return _users(conn, username)[0]


@router.post("/auth/sign-out", status_code=status.HTTP_204_NO_CONTENT, tags=["auth"])
def sign_out(
    request: Request,
    who: Caller,
    credentials: Annotated[HTTPAuthorizationCredentials, Depends(bearer)],
    store: Store,
) -> None:
    """Revoke the token this request was made with."""
    revoke_token(store, credentials.credentials)
    request.app.state.principals.clear()


@router.get("/auth/tokens", response_model=list[TokenOut], tags=["auth"])
def my_tokens(who: Caller, store: Store) -> list[TokenOut]:
    """Your tokens (sign-ins and API tokens), without their secrets."""
    return [TokenOut(**vars(t)) for t in list_tokens(store, who.user_id)]


@router.post("/auth/tokens", response_model=NewToken, status_code=201, tags=["auth"])
def new_token(body: TokenIn, who: Caller, store: Store) -> NewToken:
    """An API token for scripts, with your role; the token is shown this once."""
    now = datetime.now(UTC)
    expires = now + timedelta(days=body.days) if body.days else None
    token = issue_token(store, who.user_id, body.name, expires)
    [info] = [t for t in list_tokens(store, who.user_id) if t.id == public_id(token)]
    return NewToken(**vars(info), token=token)


@router.delete("/auth/tokens/{public_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["auth"])
def drop_token(public_id: str, request: Request, who: Caller, store: Store) -> None:
    if not revoke_token_id(store, who.user_id, public_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such token")
    request.app.state.principals.clear()
