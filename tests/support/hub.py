"""The hub under test: its store on each database it supports, its API, and the people who
sign in to it, one per role."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from hub import db
from hub.access_lists import AclPublisher
from hub.app import create_app
from hub.auth import Role, create_user
from hub.mail import Mailer
from tests.support.postgres import throwaway_database
from tests.support.smtp import Inbox, smtp_server

#: Everyone's password in the hub tests (long enough for the hub's rule).
PASSWORD = "a long passphrase"

#: Who has each role, unless a test names someone else.
USERNAMES = {Role.NETWORK_ADMIN: "nadia", Role.SITE_OPERATOR: "olga", Role.TECHNICIAN: "tim"}


@pytest.fixture(params=["sqlite", "postgresql"])
def hub_url(request, tmp_path):
    """The hub's store on each database it supports: a SQLite file, a fresh PostgreSQL db."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'hub.db'}"
        return
    with throwaway_database("hafen_test") as url:
        yield url


@pytest.fixture
def engine(hub_url) -> Iterator[Engine]:
    """The hub's store on each database, migrated to the newest schema and empty."""
    engine = db.connect(hub_url)
    yield engine
    engine.dispose()


def add_user(
    engine: Engine,
    role: Role,
    sites: Sequence[str] | None = None,
    username: str | None = None,
    password: str = PASSWORD,
    **who: str,
) -> str:
    """A user with ``role`` (an operator of ``sites``; ``member_id=`` or ``company_id=`` for
    a member or company admin); returns the name, by default the role's own: nadia (network
    admin), olga (site operator), tim (technician), mia (member) or cora (company admin)."""
    username = username or USERNAMES[role]
    create_user(engine, username, password, role, list(sites) if sites else None, **who)
    return username


def add_staff(engine: Engine, operator_sites: Sequence[str] = ("leipzig-ost",)) -> None:
    """One user per role: nadia, olga (operator of ``operator_sites``) and tim."""
    add_user(engine, Role.NETWORK_ADMIN)
    add_user(engine, Role.SITE_OPERATOR, operator_sites)
    add_user(engine, Role.TECHNICIAN)


@contextmanager
def api_client(
    engine: Engine,
    card_key: bytes | None = None,
    publisher: AclPublisher | None = None,
    mail: Mailer | None = None,
) -> Iterator[TestClient]:
    """The hub's API on ``engine``, started and shut down around the block (sending mail
    through ``mail``'s server, if given); the store is at hand as ``client.engine``."""
    with TestClient(create_app(engine, card_key, publisher, mail=mail)) as client:
        client.engine = engine
        yield client


@pytest.fixture
def api(engine) -> Iterator[TestClient]:
    """The hub's API on each database, with nadia (network admin), olga (operator of
    leipzig-ost) and tim (technician) to sign in as; nobody signed in yet."""
    add_staff(engine)
    with api_client(engine) as client:
        yield client


@pytest.fixture
def mail_api(engine) -> Iterator[tuple[TestClient, Inbox]]:
    """The hub's API on each database, sending mail through a real SMTP server, with nadia,
    olga and tim as ``api`` has them; yields (client, inbox)."""
    add_staff(engine)
    with smtp_server() as smtp, api_client(engine, mail=smtp.mailer()) as client:
        yield client, smtp.inbox


def as_user(client: httpx.Client, username: str, password: str = PASSWORD) -> dict[str, str]:
    """Sign ``username`` in through the API; the header that carries their token."""
    response = client.post("/auth/token", data={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def sign_in_as(
    client: TestClient, role: Role, sites: Sequence[str] | None = None, username: str | None = None
) -> dict[str, str]:
    """A new user with ``role`` (an operator of ``sites``) in the store of ``client`` (from
    ``api_client``), signed in through the API; the header that carries their token."""
    return as_user(client, add_user(client.engine, role, sites, username))
