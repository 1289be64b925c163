"""Hub accounts: argon2 passwords, hashed tokens, roles and site scopes, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from argon2 import profiles
from sqlalchemy import select

from hub import db
from hub.auth import (
    AuthError,
    Role,
    authenticate,
    create_user,
    issue_token,
    revoke_token,
    sign_in,
)
from tests.support.hub import SHIPPED_HASHER


def test_sign_in_issues_a_token_that_names_the_user_and_their_sites(engine):
    create_user(engine, "olga", "a long passphrase", Role.SITE_OPERATOR, ["leipzig-ost"])
    token = sign_in(engine, "olga", "a long passphrase", timedelta(hours=8))
    who = authenticate(engine, token)
    assert (who.username, who.role, who.sites) == ("olga", Role.SITE_OPERATOR, {"leipzig-ost"})
    assert who.may_see_site("leipzig-ost") and not who.may_see_site("borna")


def test_wrong_password_unknown_user_and_short_password(engine):
    create_user(engine, "olga", "a long passphrase", Role.SITE_OPERATOR)
    for username, password in (("olga", "wrong passphrase"), ("nobody", "a long passphrase")):
        with pytest.raises(AuthError, match="wrong username or password"):
            sign_in(engine, username, password, timedelta(hours=1))
    with pytest.raises(ValueError, match="at least 10"):
        create_user(engine, "tim", "short", Role.TECHNICIAN)


def test_only_hashes_are_stored(engine):
    user = create_user(engine, "nadia", "a long passphrase", Role.NETWORK_ADMIN)
    token = issue_token(engine, user, "script")
    with engine.connect() as conn:
        stored = conn.execute(select(db.users.c.password_hash)).scalar_one()
        token_rows = conn.execute(select(db.api_tokens.c.token_hash)).scalars().all()
    assert stored.startswith("$argon2id$") and "a long passphrase" not in stored
    assert token not in token_rows and all(len(t) == 64 for t in token_rows)


def test_the_hub_hashes_at_the_recommended_cost_and_signs_in_with_such_a_hash(engine):
    """The suite hashes at argon2's cheapest (tests/support/hub.py); the hub itself hashes at
    RFC 9106's recommended cost for low memory, and a password stored so signs in here."""
    assert SHIPPED_HASHER._parameters == profiles.RFC_9106_LOW_MEMORY
    user = create_user(engine, "olga", "a long passphrase", Role.SITE_OPERATOR)
    shipped = SHIPPED_HASHER.hash("a long passphrase")
    with engine.begin() as conn:
        conn.execute(db.users.update().where(db.users.c.id == user).values(password_hash=shipped))
    token = sign_in(engine, "olga", "a long passphrase", timedelta(hours=1))
    assert authenticate(engine, token).username == "olga"


def test_expired_revoked_and_foreign_tokens_are_refused(engine):
    user = create_user(engine, "tim", "a long passphrase", Role.TECHNICIAN)
    old = issue_token(engine, user, "old", datetime.now(UTC) - timedelta(seconds=1))
    kept = issue_token(engine, user, "kept", datetime.now(UTC) + timedelta(days=1))
    for token in (old, "hft_made-up", "Bearer something", ""):
        with pytest.raises(AuthError):
            authenticate(engine, token)
    assert authenticate(engine, kept).role == Role.TECHNICIAN
    revoke_token(engine, kept)
    with pytest.raises(AuthError):
        authenticate(engine, kept)


def test_network_admins_see_every_site_technicians_none(engine):
    admin = create_user(engine, "nadia", "a long passphrase", Role.NETWORK_ADMIN)
    tech = create_user(engine, "tim", "a long passphrase", Role.TECHNICIAN, ["borna"])
    assert authenticate(engine, issue_token(engine, admin, "t")).may_see_site("anywhere")
    assert not authenticate(engine, issue_token(engine, tech, "t")).may_see_site("borna")
