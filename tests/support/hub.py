"""The hub under test: its store on each database it supports, its API, and the people who
sign in to it, one per role."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from argon2 import PasswordHasher, profiles
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from hub import auth, db
from hub.access_lists import AclPublisher
from hub.app import create_app
from hub.auth import Role, create_user
from hub.mail import Mailer
from tests.support.postgres import BackgroundDrops, migrated_template, throwaway_database
from tests.support.smtp import Inbox, smtp_server

#: Everyone's password in the hub tests (long enough for the hub's rule).
PASSWORD = "a long passphrase"

#: Who has each role, unless a test names someone else.
USERNAMES = {Role.NETWORK_ADMIN: "nadia", Role.SITE_OPERATOR: "olga", Role.TECHNICIAN: "tim"}

#: How the hub hashes passwords when it runs: argon2id at RFC 9106's cost for low memory.
SHIPPED_HASHER = auth._hasher
#: ... and how in the tests: argon2id at the library's cheapest (its profile for tests). At the
#: shipped cost every user a test makes and every sign-in took a quarter to a half second of
#: both cores, most of many tests' time; the hashes stay argon2id and are checked for real.
TEST_HASHER = PasswordHasher.from_parameters(profiles.CHEAPEST)


@pytest.fixture(autouse=True, scope="session")
def _passwords_at_the_cheapest_cost() -> Iterator[None]:
    """Every test hashes and checks passwords with ``TEST_HASHER`` (test_hub_auth holds the
    hub to ``SHIPPED_HASHER``'s cost)."""
    auth._hasher = TEST_HASHER
    yield
    auth._hasher = SHIPPED_HASHER


#: The fixtures that migrate the store they are given at once: a test that takes one of them
#: gets its store migrated already (a copy of one migrated once), not empty.
MIGRATED_BY = frozenset({"engine", "network_api", "provisioned_on_each_store"})


@functools.cache
def _sqlite_template() -> Path:
    """A SQLite store migrated to the newest schema, once per test process (migrating takes
    half a second; copying the file a millisecond)."""
    folder = Path(tempfile.mkdtemp(prefix="hafen-template-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    path = folder / "hub.db"
    db.connect(f"sqlite:///{path}").dispose()
    # The last connection closed checkpointed the write-ahead log: the file is the store.
    assert not path.with_name("hub.db-wal").exists()
    return path


def migrated_sqlite(path: Path) -> str:
    """The URL of the SQLite store at ``path``; where there is none yet, a new one, migrated
    to the newest schema and empty."""
    if not path.exists():
        shutil.copyfile(_sqlite_template(), path)
    return f"sqlite:///{path}"


@pytest.fixture(scope="session")
def _pg_drops() -> Iterator[BackgroundDrops]:
    """The test databases of this process, dropped in the background while tests run."""
    drops = BackgroundDrops()
    yield drops
    drops.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def hub_url(request, tmp_path):
    """The hub's store on each database it supports: a SQLite file, a fresh PostgreSQL db.
    Empty, unless the test takes a fixture that migrates it anyway (``MIGRATED_BY``): then
    it is migrated already, copied from a store migrated once (the migrations' own tests
    take ``hub_url`` alone and migrate it themselves)."""
    migrated = not MIGRATED_BY.isdisjoint(request.fixturenames)
    if request.param == "sqlite":
        path = tmp_path / "hub.db"
        yield migrated_sqlite(path) if migrated else f"sqlite:///{path}"
        return
    drops = request.getfixturevalue("_pg_drops")
    template = migrated_template() if migrated else None
    with throwaway_database("hafen_test", template=template, drops=drops) as url:
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
