"""Who may use the hub: users with argon2 passwords, API tokens, and roles with site scopes.

Roles: a network admin may do everything; a site operator only what concerns the sites they
are given; a technician only devices and provisioning. Tokens are random, shown once, and kept
as SHA-256 hashes, so the database never holds a usable credential.

Every token ends: a sign-in after ``SESSION``, any other token after at most its maximum
lifetime (``TOKEN_MAX_LIFETIME`` unless the hub is configured otherwise). A token made with
another token (an API token made in a sign-in session) is bound to it: it ends when that one
ends, by its expiry or its revocation (signing out), so a stolen or forgotten session cannot
leave a credential behind that outlives it. Only a network admin may make a token that is not
bound (``hub.services.users``).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import ColumnElement, Connection, Engine, delete, insert, select, update

from hub import db

_hasher = PasswordHasher()
TOKEN_PREFIX = "hft_"
#: A password that cannot be guessed offline in a lifetime, yet typeable by a volunteer.
MIN_PASSWORD_LENGTH = 10
#: The stored password of an invited user who has not set one yet: no password matches it
#: (it is no argon2 hash), and signing in with it costs as much as a wrong password.
UNUSABLE_PASSWORD = "!unset"


#: How long a password sign-in lasts (API token or dashboard session).
SESSION = timedelta(hours=12)
#: The longest any token lives unless the hub is configured otherwise (``http.token_max_days``).
TOKEN_MAX_LIFETIME = timedelta(days=365)


class Role(StrEnum):
    NETWORK_ADMIN = "network_admin"
    SITE_OPERATOR = "site_operator"
    TECHNICIAN = "technician"
    #: A member of the network: their own bookings, cards and visits, nothing of anyone else.
    MEMBER = "member"
    #: Looks after one company's staff ("commuter harbours"): their allowances and bookings.
    COMPANY_ADMIN = "company_admin"


#: The roles that run the network; the people who use it (members, company admins) reach
#: only the endpoints and pages made for them.
STAFF_ROLES = (Role.NETWORK_ADMIN, Role.SITE_OPERATOR, Role.TECHNICIAN)


class AuthError(Exception):
    """Credentials were missing, wrong, expired or revoked (no detail on which: on purpose)."""


@dataclass(frozen=True)
class Principal:
    """The user behind a request: what they are, and which sites they may see."""

    user_id: int
    username: str
    role: Role
    sites: frozenset[str]
    #: When the token used expires (None only for a principal made without a token).
    expires_at: datetime | None = None
    #: The SHA-256 of the token used: what a token made with it is bound to.
    token_hash: str | None = None
    #: The member this user is (always for a member; a company admin may be one too).
    member_id: str | None = None
    #: The company a company admin looks after.
    company_id: str | None = None

    def may_see_site(self, site: str) -> bool:
        return self.role == Role.NETWORK_ADMIN or (
            self.role == Role.SITE_OPERATOR and site in self.sites
        )


def create_user(
    engine: Engine,
    username: str,
    password: str,
    role: Role,
    sites: list[str] | None = None,
    *,
    member_id: str | None = None,
    company_id: str | None = None,
) -> int:
    """Add a user; an operator gets the listed sites, a member user is ``member_id``, a
    company admin looks after ``company_id``. Returns the user id."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"a password has at least {MIN_PASSWORD_LENGTH} characters")
    with engine.begin() as conn:
        user_id = conn.execute(
            insert(db.users)
            .returning(db.users.c.id)
            .values(
                username=username,
                password_hash=_hasher.hash(password),
                role=Role(role).value,
                disabled=False,
                created_at=datetime.now(UTC),
                member_id=member_id,
                company_id=company_id,
            )
        ).scalar_one()
        if sites:
            conn.execute(insert(db.user_sites), [{"user_id": user_id, "site_id": s} for s in sites])
    return int(user_id)


def hash_password(password: str) -> str:
    """What the store keeps of a new password; ValueError if it is too short."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"a password has at least {MIN_PASSWORD_LENGTH} characters")
    return _hasher.hash(password)


def sign_in(engine: Engine, username: str, password: str, lifetime: timedelta) -> str:
    """Check a password and issue a token valid for ``lifetime``."""
    with engine.connect() as conn:
        user = conn.execute(select(db.users).where(db.users.c.username == username)).one_or_none()
    if user is None or user.disabled or user.password_hash == UNUSABLE_PASSWORD:
        _hasher.hash(password)  # the same work as for a real user: no timing oracle
        raise AuthError("wrong username or password")
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        raise AuthError("wrong username or password") from None
    if _hasher.check_needs_rehash(user.password_hash):
        with engine.begin() as conn:
            conn.execute(
                update(db.users)
                .where(db.users.c.id == user.id)
                .values(password_hash=_hasher.hash(password))
            )
    return issue_token(engine, user.id, "sign-in", datetime.now(UTC) + lifetime)


def issue_token(
    engine: Engine,
    user_id: int,
    name: str,
    expires_at: datetime | None = None,
    bound_to: str | None = None,
) -> str:
    """Create an API token for a user; the token itself is returned once and never stored.

    It expires at ``expires_at`` (default: ``TOKEN_MAX_LIFETIME`` from now). ``bound_to``,
    the hash of the token it is made with, binds it to that token: it expires no later and
    is revoked with it (AuthError if that token is gone already)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    t, now = db.api_tokens.c, datetime.now(UTC)
    expires_at = expires_at or now + TOKEN_MAX_LIFETIME
    with engine.begin() as conn:
        # The user's expired tokens go now: the table does not grow with every sign-in. A
        # bound token expires no later than its parent, so none is left without one.
        conn.execute(delete(db.api_tokens).where(t.user_id == user_id, t.expires_at < now))
        if bound_to is not None:
            # FOR SHARE on PostgreSQL: a sign-out deleting the parent waits for this token to be
            # stored (and then revokes it too), or this waits for the sign-out and finds no
            # parent. Without it a token made during a sign-out outlived it. SQLite: one writer.
            parent = conn.scalar(
                select(t.expires_at)
                .where(t.token_hash == bound_to, t.user_id == user_id)
                .with_for_update(read=True)
            )
            if parent is None or _expired(parent, now):
                raise AuthError("unknown, expired or revoked token")
            expires_at = min(expires_at, db.aware(parent))
        conn.execute(
            insert(db.api_tokens).values(
                token_hash=_digest(token),
                user_id=user_id,
                name=name,
                created_at=now,
                expires_at=expires_at,
                bound_to=bound_to,
            )
        )
    return token


def _revoke(conn: Connection, condition: ColumnElement[bool]) -> int:
    """Delete the tokens that match ``condition`` and every token bound to them, however
    deep; returns how many matched ``condition`` itself."""
    t = db.api_tokens.c
    hashes = list(conn.scalars(select(t.token_hash).where(condition)))
    first, gone = len(hashes), set(hashes)
    while hashes:
        conn.execute(delete(db.api_tokens).where(t.token_hash.in_(hashes)))
        bound = conn.scalars(select(t.token_hash).where(t.bound_to.in_(hashes))).all()
        hashes = [h for h in bound if h not in gone]
        gone.update(hashes)
    return first


def hold_tokens_to(engine: Engine, max_lifetime: timedelta) -> int:
    """End every live token at most ``max_lifetime`` after it was made, and no later than the
    token it is bound to: a hub started with a lower maximum than its tokens were made under
    holds them to it (a leaked token for a script ends then, not a year on). Returns how
    many tokens now end sooner."""
    t, now = db.api_tokens.c, datetime.now(UTC)
    ends: dict[str, datetime] = {}
    shortened = 0
    with engine.begin() as conn:
        live = conn.execute(
            select(t.token_hash, t.created_at, t.expires_at, t.bound_to)
            .where(t.expires_at > now)
            .order_by(t.created_at)  # a token is made after the one it is bound to
        ).all()
        for row in live:
            end = ends[row.token_hash] = min(
                db.aware(row.expires_at),
                db.aware(row.created_at) + max_lifetime,
                ends.get(row.bound_to or "", db.aware(row.expires_at)),
            )
            if end < db.aware(row.expires_at):
                conn.execute(
                    update(db.api_tokens)
                    .where(t.token_hash == row.token_hash)
                    .values(expires_at=end)
                )
                shortened += 1
    return shortened


def revoke_token(engine: Engine, token: str) -> None:
    """Revoke a token (sign out) and the tokens bound to it."""
    with engine.begin() as conn:
        _revoke(conn, db.api_tokens.c.token_hash == _digest(token))


def authenticate(engine: Engine, token: str) -> Principal:
    """Resolve a bearer token to its user, or raise AuthError."""
    if not token.startswith(TOKEN_PREFIX):
        raise AuthError("not a hafen token")
    now = datetime.now(UTC)
    with engine.connect() as conn:
        row = conn.execute(
            select(db.users, db.api_tokens.c.expires_at)
            .join(db.api_tokens, db.api_tokens.c.user_id == db.users.c.id)
            .where(db.api_tokens.c.token_hash == _digest(token))
        ).one_or_none()
        if row is None or row.disabled or _expired(row.expires_at, now):
            raise AuthError("unknown, expired or revoked token")
        sites = frozenset(
            conn.scalars(select(db.user_sites.c.site_id).where(db.user_sites.c.user_id == row.id))
        )
    return Principal(
        row.id,
        row.username,
        Role(row.role),
        sites,
        db.aware(row.expires_at),
        _digest(token),
        member_id=row.member_id,
        company_id=row.company_id,
    )


def _expired(expires_at: datetime | None, now: datetime) -> bool:
    if expires_at is None:
        return False
    if expires_at.tzinfo is None:  # SQLite hands back naive UTC
        expires_at = expires_at.replace(tzinfo=UTC)
    return expires_at <= now


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class TokenInfo:
    """An API token as its owner sees it later: never the secret, only a short id."""

    id: str
    name: str
    created_at: datetime
    expires_at: datetime | None
    #: Whether the token ends with the token it was made with (a session).
    bound: bool = False


def token_id(token_hash: str) -> str:
    """A token's public id: the first 16 hex digits of its hash (useless to an attacker)."""
    return token_hash[:16]


def public_id(token: str) -> str:
    return token_id(_digest(token))


def list_tokens(engine: Engine, user_id: int) -> list[TokenInfo]:
    t = db.api_tokens.c
    with engine.connect() as conn:
        rows = conn.execute(
            select(db.api_tokens).where(t.user_id == user_id).order_by(t.created_at)
        ).all()
    return [
        TokenInfo(
            token_id(r.token_hash),
            r.name,
            db.aware(r.created_at),
            db.aware(r.expires_at),
            r.bound_to is not None,
        )
        for r in rows
    ]


def revoke_token_id(engine: Engine, user_id: int, public_id: str) -> bool:
    """Revoke one of a user's tokens by its public id (and the tokens bound to it); False if
    they have no such token."""
    t = db.api_tokens.c
    if len(public_id) != 16:
        return False
    with engine.begin() as conn:
        mine = (t.user_id == user_id) & t.token_hash.startswith(public_id, autoescape=True)
        return bool(_revoke(conn, mine))


def update_user(
    engine: Engine,
    username: str,
    *,
    role: Role | None = None,
    sites: list[str] | None = None,
    disabled: bool | None = None,
    password: str | None = None,
) -> bool:
    """Change a user; disabling or a new password also signs them out everywhere."""
    if password is not None and len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"a password has at least {MIN_PASSWORD_LENGTH} characters")
    values: dict = {}
    if role is not None:
        values["role"] = Role(role).value
    if disabled is not None:
        values["disabled"] = disabled
    if password is not None:
        values["password_hash"] = _hasher.hash(password)
    with engine.begin() as conn:
        user_id = conn.scalar(select(db.users.c.id).where(db.users.c.username == username))
        if user_id is None:
            return False
        if values:
            conn.execute(update(db.users).where(db.users.c.id == user_id).values(**values))
        if sites is not None:
            conn.execute(delete(db.user_sites).where(db.user_sites.c.user_id == user_id))
            if sites:
                conn.execute(
                    insert(db.user_sites), [{"user_id": user_id, "site_id": s} for s in sites]
                )
        if disabled or password is not None:
            conn.execute(delete(db.api_tokens).where(db.api_tokens.c.user_id == user_id))
    return True
