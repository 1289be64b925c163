"""The store's tables of who may use the hub: users with their roles and sites, API tokens,
and the one-time links that let an invited member or company admin set a password. Reached
through hub.db like every other table.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    String,
    Table,
    UniqueConstraint,
)

from hub.schema import BigId, metadata

users = Table(
    "users",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("username", String(80), nullable=False, unique=True),
    Column("password_hash", String(200), nullable=False),
    Column("role", String(20), nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    #: The member this user is (a member signs in as themselves; a company admin may be one).
    Column("member_id", String(64)),
    #: The company a company admin looks after.
    Column("company_id", String(64), index=True),
    UniqueConstraint("member_id", name="uq_users_member_id"),
)

#: The sites a site operator is given.
user_sites = Table(
    "user_sites",
    metadata,
    Column("user_id", BigInteger, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("site_id", String(64), primary_key=True),
)

#: API tokens, stored as SHA-256 of the token: a stolen database holds no usable token.
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", BigInteger, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(80), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    #: Every token ends: a sign-in after its session, any other after at most the maximum.
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("last_used_at", DateTime(timezone=True)),
    #: The token this one was made with: it ends when that one does (hub/auth.py).
    Column("bound_to", String(64), index=True),
)


#: One-time links that let a member or a company admin set their password (only the SHA-256
#: of the link's token is kept, as for API tokens).
invitations = Table(
    "invitations",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", BigInteger, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("created_by", String(80), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True)),
)
