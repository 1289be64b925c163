"""API tokens end: one made in a session ends with it (sign-out or expiry) unless a network
admin makes it to outlive the session, and every token ends after the hub's maximum; on
SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import threading
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from hub import db
from hub.app import create_app
from hub.auth import (
    SESSION,
    AuthError,
    Role,
    authenticate,
    create_user,
    issue_token,
    revoke_token,
)
from tests.support.hub import PASSWORD, add_staff, as_user


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def expires(made: dict) -> datetime:
    return datetime.fromisoformat(made["expires_at"])


def test_a_token_made_in_a_session_ends_when_the_session_is_signed_out(api):
    olga = as_user(api, "olga")  # a sign-in: 12 hours
    made = api.post("/auth/tokens", json={"name": "kiosk", "days": 90}, headers=olga)
    assert made.status_code == 201, made.text
    kiosk = bearer(made.json()["token"])
    assert made.json()["bound"] is True
    # No longer than the session it was made in, although 90 days were asked for.
    assert expires(made.json()) <= datetime.now(UTC) + SESSION
    # A token made with that token is bound to it in turn.
    again = api.post("/auth/tokens", json={"name": "kiosk-2"}, headers=kiosk).json()
    assert api.get("/auth/me", headers=bearer(again["token"])).status_code == 200
    assert api.post("/auth/sign-out", headers=olga).status_code == 204
    assert api.get("/auth/me", headers=kiosk).status_code == 401
    assert api.get("/auth/me", headers=bearer(again["token"])).status_code == 401
    with api.engine.connect() as conn:  # gone, not only refused
        assert conn.scalars(select(db.api_tokens.c.name)).all() == []


def test_revoking_a_token_revokes_those_made_with_it(api):
    olga = as_user(api, "olga")
    parent = api.post("/auth/tokens", json={"name": "parent"}, headers=olga).json()
    child = api.post("/auth/tokens", json={"name": "child"}, headers=bearer(parent["token"]))
    assert api.delete(f"/auth/tokens/{parent['id']}", headers=olga).status_code == 204
    assert api.get("/auth/me", headers=bearer(child.json()["token"])).status_code == 401
    assert api.get("/auth/me", headers=olga).status_code == 200  # the session itself stays
    assert [t["name"] for t in api.get("/auth/tokens", headers=olga).json()] == ["sign-in"]


def test_a_token_made_in_a_session_expires_with_it(api):
    olga = as_user(api, "olga")
    made = api.post("/auth/tokens", json={"name": "kiosk"}, headers=olga).json()
    # The session ends (its 12 hours are up): the token it made ends then too.
    with api.engine.begin() as conn:
        t = db.api_tokens.c
        session = conn.scalar(select(t.expires_at).where(t.name == "sign-in"))
        kiosk = conn.scalar(select(t.expires_at).where(t.name == "kiosk"))
        assert db.aware(kiosk) == db.aware(session)
        past = datetime.now(UTC) - timedelta(seconds=1)
        conn.execute(update(db.api_tokens).where(t.name == "sign-in").values(expires_at=past))
        conn.execute(update(db.api_tokens).where(t.name == "kiosk").values(expires_at=past))
    assert api.get("/auth/me", headers=bearer(made["token"])).status_code == 401


def test_only_an_admin_makes_a_token_that_outlives_the_session_and_never_forever(api):
    olga, nadia = as_user(api, "olga"), as_user(api, "nadia")
    long_lived = {"name": "reports", "outlives_session": True}
    assert api.post("/auth/tokens", json=long_lived, headers=olga).status_code == 403
    assert (
        api.post("/auth/tokens", json={**long_lived, "days": 366}, headers=nadia).status_code == 422
    )
    made = api.post("/auth/tokens", json={**long_lived, "days": None}, headers=nadia)
    assert made.status_code == 201, made.text
    assert made.json()["bound"] is False
    # As long as allowed, and no longer: a year by default.
    year = datetime.now(UTC) + timedelta(days=365)
    assert year - timedelta(minutes=1) < expires(made.json()) <= year
    assert api.post("/auth/sign-out", headers=nadia).status_code == 204
    assert api.get("/auth/me", headers=bearer(made.json()["token"])).status_code == 200
    with api.engine.connect() as conn:
        assert None not in conn.scalars(select(db.api_tokens.c.expires_at)).all()


def test_the_maximum_lifetime_is_the_hubs_setting(engine):
    add_staff(engine)
    with TestClient(create_app(engine, token_max_days=30)) as api:
        nadia = as_user(api, "nadia")
        body = {"name": "script", "outlives_session": True}
        refused = api.post("/auth/tokens", json={**body, "days": 31}, headers=nadia)
        assert refused.status_code == 422 and "at most 30 days" in refused.text
        made = api.post("/auth/tokens", json={**body, "days": None}, headers=nadia).json()
        assert expires(made) <= datetime.now(UTC) + timedelta(days=30)


def test_a_token_issued_without_an_end_gets_the_maximum(engine):
    """Scripts and the command line issue tokens directly: they end too."""
    issue_token(engine, create_user(engine, "nadia", PASSWORD, Role.NETWORK_ADMIN), "direct")
    with engine.connect() as conn:
        end = conn.scalar(select(db.api_tokens.c.expires_at))
    assert db.aware(end) <= datetime.now(UTC) + timedelta(days=365)


def mint_while_signing_out(engine, user: int) -> list[str]:
    """Three threads make tokens in a new session while it signs out: those they made."""
    session = issue_token(engine, user, "sign-in", datetime.now(UTC) + SESSION)
    bound_to = authenticate(engine, session).token_hash
    start = threading.Barrier(4)
    made: list[str] = []

    def mint() -> None:
        start.wait()
        for _ in range(3):
            with contextlib.suppress(AuthError):  # the session was gone already
                made.append(issue_token(engine, user, "kiosk", None, bound_to))

    minters = [threading.Thread(target=mint) for _ in range(3)]
    for thread in minters:
        thread.start()
    start.wait()
    revoke_token(engine, session)
    for thread in minters:
        thread.join()
    return made


def test_a_token_made_while_its_session_signs_out_ends_with_it(engine):
    """Tokens made in a session at the moment it signs out: each is refused (its session is
    gone) or revoked with it. On PostgreSQL, most of them once outlived the sign-out: the
    sign-out read the session's tokens before they were stored, and they were stored after."""
    user = create_user(engine, "olga", PASSWORD, Role.SITE_OPERATOR)
    outlived = 0
    for _ in range(30):
        for token in mint_while_signing_out(engine, user):
            with contextlib.suppress(AuthError):
                authenticate(engine, token)
                outlived += 1
    assert outlived == 0
    with engine.connect() as conn:
        assert conn.scalars(select(db.api_tokens.c.name)).all() == []


def test_a_lower_maximum_ends_the_tokens_that_would_outlive_it(engine):
    """A hub restarted with a lower ``http.token_max_days`` (say, after a token leaked)
    holds every token to it: one made a year long 31 days ago ends under a maximum of 30,
    one made today ends 30 days from its making, and one bound to it no later; the README
    says no token lives longer."""
    add_staff(engine)
    with TestClient(create_app(engine)) as api:
        nadia = as_user(api, "nadia")
        body = {"outlives_session": True, "days": 365}
        old = api.post("/auth/tokens", json={**body, "name": "old"}, headers=nadia).json()
        new = api.post("/auth/tokens", json={**body, "name": "new"}, headers=nadia).json()
        child = {"name": "child", "days": 365}
        assert api.post("/auth/tokens", json=child, headers=bearer(new["token"])).status_code == 201
    month_ago = timedelta(days=31)
    with engine.begin() as conn:  # "old" was made 31 days ago
        t = db.api_tokens.c
        made = conn.execute(select(t.created_at, t.expires_at).where(t.name == "old")).one()
        conn.execute(
            update(db.api_tokens)
            .where(t.name == "old")
            .values(created_at=made.created_at - month_ago, expires_at=made.expires_at - month_ago)
        )
    with TestClient(create_app(engine, token_max_days=30)) as api:
        assert api.get("/auth/me", headers=bearer(old["token"])).status_code == 401
        assert api.get("/auth/me", headers=bearer(new["token"])).status_code == 200
        ends = {
            t["name"]: datetime.fromisoformat(t["expires_at"])
            for t in api.get("/auth/tokens", headers=bearer(new["token"])).json()
        }
    assert ends["new"] <= expires(new) - timedelta(days=335) + timedelta(seconds=1)
    assert ends["child"] <= ends["new"]
