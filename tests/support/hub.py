"""The hub under test: its store on each database it supports."""

from __future__ import annotations

import pytest

from tests.support.postgres import throwaway_database


@pytest.fixture(params=["sqlite", "postgresql"])
def hub_url(request, tmp_path):
    """The hub's store on each database it supports: a SQLite file, a fresh PostgreSQL db."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'hub.db'}"
        return
    with throwaway_database("hafen_test") as url:
        yield url
