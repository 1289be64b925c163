"""The hub under test: its store on each database it supports, and people signed in to its API."""

from __future__ import annotations

import httpx
import pytest

from tests.support.postgres import throwaway_database

#: Everyone's password in the hub tests (long enough for the hub's rule).
PASSWORD = "a long passphrase"


@pytest.fixture(params=["sqlite", "postgresql"])
def hub_url(request, tmp_path):
    """The hub's store on each database it supports: a SQLite file, a fresh PostgreSQL db."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'hub.db'}"
        return
    with throwaway_database("hafen_test") as url:
        yield url


def as_user(client: httpx.Client, username: str, password: str = PASSWORD) -> dict[str, str]:
    """Sign ``username`` in through the API; the header that carries their token."""
    response = client.post("/auth/token", data={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}
