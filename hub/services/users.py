"""Hub users and their API tokens: admins manage users and their sites; everyone manages their
own tokens (for scripts and kiosks). Passwords and tokens themselves are hub/auth.py's.

A change here may end sessions (a disabled user, a new password, a revoked token): whoever
caches resolved tokens must forget them after calling these.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.exc import IntegrityError

from hafen.ids import Slug
from hub import auth, db
from hub.auth import MIN_PASSWORD_LENGTH, STAFF_ROLES, TOKEN_MAX_LIFETIME, Principal, Role
from hub.services.errors import Conflict, Invalid, NotFound
from hub.services.scope import Scope
from hub.throttle import SignInThrottle, throttled_sign_in

Password = Annotated[str, Field(min_length=MIN_PASSWORD_LENGTH, max_length=200)]
#: The longest an API token lives unless the hub is configured otherwise.
TOKEN_MAX_DAYS = TOKEN_MAX_LIFETIME.days
ONLY_OPERATORS = "only site operators are given sites"


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
        _staff_only(self.role)
        if self.sites and self.role != Role.SITE_OPERATOR:
            raise ValueError(ONLY_OPERATORS)
        return self


class UserChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role | None = None
    sites: list[Slug] | None = None
    disabled: bool | None = None
    password: Password | None = None

    @model_validator(mode="after")
    def _staff_role(self) -> UserChange:
        if self.role is not None:
            _staff_only(self.role)
        return self


def _staff_only(role: Role) -> None:
    """Staff users are made here; members and company admins are invited (their account
    belongs to a member or a company, which a bare user would lack)."""
    if role not in STAFF_ROLES:
        raise ValueError(f"{role.value}: members and company admins are invited, not created")


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=80)]
    days: Annotated[
        int | None,
        Field(ge=1, le=3660, description="How long it lives; none: as long as allowed."),
    ] = 90
    outlives_session: bool = Field(
        default=False,
        description="Network admins only: the token does not end with the session (or token)"
        " it is made with; it still ends after the hub's maximum lifetime.",
    )


class TokenOut(BaseModel):
    id: str
    name: str
    created_at: datetime
    expires_at: datetime | None
    #: Whether the token ends with the session (or token) it was made with.
    bound: bool = False


class NewToken(TokenOut):
    token: str = Field(description="Shown once; the hub keeps only its hash.")


def _users(conn: Connection, username: str | None = None) -> list[UserOut]:
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


def _check_sites(conn: Connection, sites: list[str]) -> None:
    known = set(conn.scalars(select(db.sites.c.id).where(db.sites.c.id.in_(sites))))
    if missing := sorted(set(sites) - known):
        raise Invalid(f"no site {missing[0]!r}")


def list_users(engine: Engine) -> list[UserOut]:
    with engine.connect() as conn:
        return _users(conn)


def add_user(engine: Engine, user: UserIn) -> UserOut:
    """Add a user; an operator is given the sites they run."""
    with engine.connect() as conn:
        _check_sites(conn, user.sites)
    try:
        auth.create_user(engine, user.username, user.password, user.role, user.sites)
    except IntegrityError:
        raise Conflict(f"user {user.username!r} exists") from None
    return UserOut(username=user.username, role=user.role, sites=sorted(user.sites))


def change_user(engine: Engine, username: str, change: UserChange) -> UserOut:
    """Change a user's role, sites or password, or disable them; disabling or a new password
    signs them out everywhere. The last active network admin cannot be demoted or disabled:
    nobody could manage the hub any more."""
    with engine.connect() as conn:
        found = _users(conn, username)
        if not found:
            raise NotFound(f"no user {username!r}")
        _check_sites(conn, change.sites or [])
        role = change.role or found[0].role
        if change.sites and role != Role.SITE_OPERATOR:
            raise Invalid(ONLY_OPERATORS)
        losing_admin = found[0].role == Role.NETWORK_ADMIN and (
            role != Role.NETWORK_ADMIN or change.disabled
        )
        admins = conn.scalar(
            select(func.count())
            .select_from(db.users)
            .where(db.users.c.role == Role.NETWORK_ADMIN.value, db.users.c.disabled.is_(False))
        )
    if losing_admin and (admins or 0) <= 1:
        raise Conflict("this is the last network admin")
    auth.update_user(
        engine,
        username,
        role=change.role,
        sites=[] if change.role and change.role != Role.SITE_OPERATOR else change.sites,
        disabled=change.disabled,
        password=change.password,
    )
    with engine.connect() as conn:
        return _users(conn, username)[0]


def my_tokens(engine: Engine, who: Principal) -> list[TokenOut]:
    """``who``'s tokens (sign-ins and API tokens), without their secrets."""
    return [TokenOut(**vars(t)) for t in auth.list_tokens(engine, who.user_id)]


def new_token(
    engine: Engine, who: Principal, token: TokenIn, max_days: int = TOKEN_MAX_DAYS
) -> NewToken:
    """An API token for scripts, with ``who``'s role; the token is returned this once.

    It ends with the session (or token) ``who`` made it with, unless a network admin asks
    for one that outlives it; and in any case after at most ``max_days``."""
    if token.outlives_session:
        Scope(who).require_role(Role.NETWORK_ADMIN)
    if token.days is not None and token.days > max_days:
        raise Invalid(f"a token lives at most {max_days} days")
    bound_to = None if token.outlives_session else who.token_hash
    if bound_to is None and not token.outlives_session:
        raise Invalid("a token is made with a signed-in session")  # not through the API
    expires = datetime.now(UTC) + timedelta(days=token.days or max_days)
    try:
        secret = auth.issue_token(engine, who.user_id, token.name, expires, bound_to)
    except auth.AuthError:  # the session ended while this was asked
        raise Invalid("the session this token would be made with has ended") from None
    [info] = [t for t in auth.list_tokens(engine, who.user_id) if t.id == auth.public_id(secret)]
    return NewToken(**vars(info), token=secret)


def drop_token(engine: Engine, who: Principal, public_id: str) -> None:
    """Revoke one of ``who``'s tokens by its public id."""
    if not auth.revoke_token_id(engine, who.user_id, public_id):
        raise NotFound("no such token")


def sign_out(engine: Engine, token: str) -> None:
    """End the session (or revoke the API token) ``token``, and the tokens made with it."""
    auth.revoke_token(engine, token)


def sign_in(
    engine: Engine, throttle: SignInThrottle, username: str, password: str, client: str
) -> str:
    """Check a password (throttled per name and client) and start a session of
    ``auth.SESSION``; raises ``auth.AuthError`` or ``throttle.Throttled``."""
    return throttled_sign_in(throttle, engine, username, password, client, auth.SESSION)
