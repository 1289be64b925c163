"""Invitations: how a member or a company admin gets their sign-in.

Staff never choose a password for someone else. Inviting makes (or finds) the person's user,
with no usable password, and a one-time link to set one: valid for ``LINK_LIFETIME``, kept only
as its SHA-256 (as API tokens are), ending any earlier link not yet used. The link goes by
mail when the hub sends mail (queued in the same transaction as the link); otherwise the
inviting admin or operator is shown it, to hand over. Following the link with a new password
sets it, ends the link and every session the user had, and signs them in.

A link that was used or has expired says so (410), an unknown one says that (404); neither
tells whose it was. Guessing is hopeless (256 bits) and throttled per client besides.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection, Engine, Row, delete, insert, select, update

from hub import auth, db
from hub.auth import MIN_PASSWORD_LENGTH, UNUSABLE_PASSWORD, Principal, Role
from hub.services.errors import Conflict, Gone, NotFound
from hub.services.mail import EMAIL_PATTERN, Letter, mailable, queue_mail
from hub.services.members import own_members
from hub.services.scope import Scope
from hub.throttle import SignInThrottle, Throttled

#: How long a link may wait to be used.
LINK_LIFETIME = timedelta(days=7)
#: How long a used or expired link is kept (it answers "used or expired", not "unknown").
FORGET_AFTER = timedelta(days=30)
#: Every link's token starts so (as API tokens start ``hft_``): a secret scanner knows it.
LINK_PREFIX = "hfi_"
#: Where a link leads: the page that asks for the new password and posts it to
#: ``POST /auth/invitations/{token}``.
LINK_PATH = "/ui/invitation/"
#: The throttle's name for link tries: counted per client, as sign-ins per name and client.
_THROTTLE_NAME = "invitation link"
#: The longest user name (the column's size): a longer address signs in by member id.
_MAX_USERNAME = 80

UNKNOWN_LINK = "no such invitation link: check that it was copied whole"
SPENT_LINK = (
    "this invitation link was used already or has expired: ask whoever invited you for a new one"
)


@dataclass(frozen=True)
class Links:
    """How an invitation reaches its person: by mail (when the hub sends mail) or shown to
    the inviter; either way a link under ``base_url``, where browsers reach the hub."""

    base_url: str
    sends_mail: bool

    def link(self, token: str) -> str:
        return f"{self.base_url.rstrip('/')}{LINK_PATH}{token}"


class InvitationOut(BaseModel):
    """An invitation made: to whom it went, or the link to hand over."""

    username: str
    role: Role
    expires_at: datetime
    #: The address the link was mailed to, masked (``a***@example.org``); None: not mailed.
    sent_to: str | None = None
    #: The link itself, only when it was not mailed: give it to the person, nobody else.
    link: str | None = None


class CompanyAdminIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Annotated[str, Field(pattern=EMAIL_PATTERN, max_length=_MAX_USERNAME)]
    name: Annotated[str, Field(min_length=1, max_length=200)]


class PasswordIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: Annotated[str, Field(min_length=MIN_PASSWORD_LENGTH, max_length=200)]


class Accepted(BaseModel):
    """A link used: the person is signed in, with this token."""

    access_token: str
    token_type: str = "bearer"
    username: str
    role: Role


def invite_member(
    engine: Engine, who: Principal, member: str, links: Links, now: datetime | None = None
) -> InvitationOut:
    """Invite ``member`` to sign in: a network admin anyone, an operator a member whose own
    access reaches one of their sites (anyone else answers as one that does not exist)."""
    scope = Scope(who)
    scope.require_people()
    with engine.begin() as conn:
        if not own_members(conn, scope, {member}) or not _exists(conn, member):
            raise NotFound(f"no member {member!r}")
        resets = who.role == Role.NETWORK_ADMIN
        return invite_member_in(conn, member, who.username, links, now, resets=resets)


def invite_member_in(
    conn: Connection,
    member: str,
    by: str,
    links: Links,
    now: datetime | None = None,
    *,
    resets: bool = False,
) -> InvitationOut:
    """Within the caller's transaction: the member's user (made if they have none) and a
    new link for it, mailed or shown (see the module). The caller checked who may.

    A link sets the password of the account it is for: one for an account that has a
    password already (or is not a plain member's) would let whoever gets the link (shown to
    the inviter when the hub sends no mail) sign in as that person. Only a network admin
    may send such a reset (``resets``); an operator or employer inviting again gets 409."""
    row = conn.execute(select(db.members).where(db.members.c.id == member)).one()
    user = conn.execute(select(db.users).where(db.users.c.member_id == member)).one_or_none()
    taken = user is not None and (
        user.password_hash != UNUSABLE_PASSWORD or user.role != Role.MEMBER
    )
    if taken and not resets:
        raise Conflict(f"{member} has an account already; a network admin can send them a new link")
    if user is None:
        username = _free_username(conn, [row.email, member])
        user_id = _new_user(conn, username, Role.MEMBER, member_id=member)
        role = Role.MEMBER
    else:
        user_id, username, role = user.id, user.username, Role(user.role)
    return _invitation(conn, user_id, username, role, row.email, row.name or member, by, links, now)


def invite_company_admin(
    engine: Engine,
    who: Principal,
    company: str,
    body: CompanyAdminIn,
    links: Links,
    now: datetime | None = None,
) -> InvitationOut:
    """Invite someone to look after ``company``'s staff (network admins only): their user is
    their e-mail address; inviting the same address again sends a new link."""
    Scope(who).require_role(Role.NETWORK_ADMIN)
    u = db.users.c
    with engine.begin() as conn:
        if conn.scalar(select(db.companies.c.id).where(db.companies.c.id == company)) is None:
            raise NotFound(f"no company {company!r}")
        user = conn.execute(select(db.users).where(u.username == body.email)).one_or_none()
        if user is None:
            user_id = _new_user(conn, body.email, Role.COMPANY_ADMIN, company_id=company)
        elif user.role == Role.COMPANY_ADMIN and user.company_id == company:
            user_id = user.id
        else:
            raise Conflict(f"the user {body.email!r} exists already, with another role")
        return _invitation(
            conn,
            user_id,
            body.email,
            Role.COMPANY_ADMIN,
            body.email,
            body.name,
            who.username,
            links,
            now,
        )


def open_invitation(
    engine: Engine,
    throttle: SignInThrottle,
    token: str,
    client: str,
    now: datetime | None = None,
) -> str:
    """The user name a link is for, when it is still good: what the page that asks for the
    password shows before anyone types one. NotFound or Gone as ``accept_invitation``, and
    counted as its tries are (a good link forgives its try)."""
    wait = throttle.attempt(_THROTTLE_NAME, client)
    if wait:
        raise Throttled(wait)
    now = now or datetime.now(UTC)
    found = _find(engine, token)
    if found is None:
        raise NotFound(UNKNOWN_LINK)
    if _spent(found, now):
        raise Gone(SPENT_LINK)
    throttle.succeeded(_THROTTLE_NAME, client)
    return str(found.username)


def accept_invitation(
    engine: Engine,
    throttle: SignInThrottle,
    token: str,
    password: str,
    client: str,
    now: datetime | None = None,
) -> Accepted:
    """Set the password of the link's user, end the link (and the user's other sessions) and
    sign them in. NotFound or Gone for a link that is not (or no longer) good; ``Throttled``
    after too many such tries from one client."""
    wait = throttle.attempt(_THROTTLE_NAME, client)
    if wait:
        raise Throttled(wait)
    now = now or datetime.now(UTC)
    digest = hashlib.sha256(token.encode()).hexdigest()
    i, u = db.invitations.c, db.users.c
    found = _find(engine, token)
    if found is None:
        raise NotFound(UNKNOWN_LINK)
    if _spent(found, now):
        raise Gone(SPENT_LINK)
    password_hash = auth.hash_password(password)  # outside the transaction: argon2 is slow
    with engine.begin() as conn:
        # Only one of two uses of the same link at once gets past this update.
        claimed = conn.execute(
            update(db.invitations)
            .where(i.token_hash == digest, i.used_at.is_(None), i.expires_at > now)
            .values(used_at=now)
        ).rowcount
        if not claimed:
            raise Gone(SPENT_LINK)
        conn.execute(
            update(db.users).where(u.id == found.user_id).values(password_hash=password_hash)
        )
        # Other links of theirs are void now, and a new password ends every session.
        _end_links(conn, found.user_id, now)
        conn.execute(delete(db.api_tokens).where(db.api_tokens.c.user_id == found.user_id))
    throttle.succeeded(_THROTTLE_NAME, client)
    session = auth.issue_token(engine, found.user_id, "sign-in", now + auth.SESSION)
    return Accepted(access_token=session, username=found.username, role=Role(found.role))


def mask(address: str) -> str:
    """An address as it may be shown to someone else: its first letter and its domain."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}"


def _find(engine: Engine, token: str) -> Row | None:
    """The link behind ``token`` with its user, if there is one."""
    digest = hashlib.sha256(token.encode()).hexdigest()
    i, u = db.invitations.c, db.users.c
    with engine.connect() as conn:
        return conn.execute(
            select(i.user_id, i.used_at, i.expires_at, u.username, u.role, u.disabled)
            .join(db.users, u.id == i.user_id)
            .where(i.token_hash == digest)
        ).one_or_none()


def _spent(found: Row, now: datetime) -> bool:
    return found.used_at is not None or db.aware(found.expires_at) <= now or found.disabled


def _end_links(conn: Connection, user_id: int, now: datetime) -> None:
    """End the user's links not yet used (they answer as expired), and forget the ones that
    ended long ago: a person invited again and again leaves a handful of rows."""
    i = db.invitations.c
    conn.execute(
        update(db.invitations)
        .where(i.user_id == user_id, i.used_at.is_(None), i.expires_at > now)
        .values(expires_at=now)
    )
    conn.execute(
        delete(db.invitations).where(i.user_id == user_id, i.expires_at < now - FORGET_AFTER)
    )


def _exists(conn: Connection, member: str) -> bool:
    return conn.scalar(select(db.members.c.id).where(db.members.c.id == member)) is not None


def _free_username(conn: Connection, candidates: list[str | None]) -> str:
    """The first candidate that fits a user name and no other user has."""
    for name in candidates:
        if name and len(name) <= _MAX_USERNAME:
            taken = conn.scalar(select(db.users.c.id).where(db.users.c.username == name))
            if taken is None:
                return name
    raise Conflict(
        "the member's e-mail address and id are both taken as user names: change the"
        " member's e-mail address, or the other user's name"
    )


def _new_user(
    conn: Connection,
    username: str,
    role: Role,
    *,
    member_id: str | None = None,
    company_id: str | None = None,
) -> int:
    """A user who cannot sign in until they set a password by their link."""
    return int(
        conn.execute(
            insert(db.users)
            .returning(db.users.c.id)
            .values(
                username=username,
                password_hash=UNUSABLE_PASSWORD,
                role=role.value,
                disabled=False,
                created_at=datetime.now(UTC),
                member_id=member_id,
                company_id=company_id,
            )
        ).scalar_one()
    )


def _invitation(
    conn: Connection,
    user_id: int,
    username: str,
    role: Role,
    address: str | None,
    name: str,
    by: str,
    links: Links,
    now: datetime | None,
) -> InvitationOut:
    """A new link for ``user_id`` (their unused ones end), mailed to ``address`` when the
    hub sends mail and the address can take it, else returned to be handed over."""
    now = now or datetime.now(UTC)
    token = LINK_PREFIX + secrets.token_urlsafe(32)
    expires_at = now + LINK_LIFETIME
    _end_links(conn, user_id, now)
    conn.execute(
        insert(db.invitations).values(
            token_hash=hashlib.sha256(token.encode()).hexdigest(),
            user_id=user_id,
            created_by=by,
            created_at=now,
            expires_at=expires_at,
        )
    )
    link = links.link(token)
    answer = InvitationOut(username=username, role=role, expires_at=expires_at)
    if links.sends_mail and address is not None and mailable(address):
        queue_mail(conn, _letter(address, name, username, link, expires_at), now)
        answer.sent_to = mask(address)
    else:
        answer.link = link
    return answer


def _letter(address: str, name: str, username: str, link: str, expires_at: datetime) -> Letter:
    """The invitation mail, in German and English."""
    until = expires_at.strftime("%d.%m.%Y %H:%M UTC")
    name = " ".join(name.split())[:200]
    body = (
        f"Hallo {name},\n\n"
        "Sie wurden zu hafen eingeladen, dem Zugang zu den Räumen unseres Netzwerks.\n"
        f"Ihr Benutzername: {username}\n"
        f"Legen Sie Ihr Passwort über diesen Link fest (einmal, bis {until}):\n\n"
        f"{link}\n\n"
        "Haben Sie diese Mail nicht erwartet, ignorieren Sie sie: ohne den Link geschieht"
        " nichts.\n\n"
        "---\n\n"
        f"Hello {name},\n\n"
        "you have been invited to hafen, the access to the spaces of our network.\n"
        f"Your user name: {username}\n"
        f"Set your password with this link (once, until {until}):\n\n"
        f"{link}\n\n"
        "If you did not expect this mail, ignore it: nothing happens without the link.\n"
    )
    return Letter(
        recipient=address,
        subject="Ihr Zugang zu hafen / Your hafen account",
        body=body,
    )
