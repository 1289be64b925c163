"""The API at the edges of its inputs, on SQLite and PostgreSQL: times are compared as instants
whatever their offset, and anything at or beyond the end of a range is a 422, never a 500."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert

from hub import db
from tests.support.events import tap
from tests.support.hub import as_user
from tests.support.sites import add_sites

AT = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def test_event_search_compares_times_as_instants_whatever_the_offset(api):
    """10:00 UTC is 00:00 the next day at +14:00 and 22:00 the day before at -12:00: a
    search from or until those times finds the event on both stores."""
    add_sites(api)
    with api.engine.begin() as conn:
        conn.execute(insert(db.events), [tap("leipzig-ost", "anna", AT)])
    nadia = as_user(api, "nadia")

    def found(**window: str) -> int:
        response = api.get("/events", params=window, headers=nadia)
        assert response.status_code == 200, response.text
        return len(response.json())

    assert found(since="2026-11-23T00:00:00+14:00") == 1  # 10:00 UTC, the event's own time
    assert found(since="2026-11-23T00:00:01+14:00") == 0
    assert found(until="2026-11-21T22:00:01-12:00") == 1  # 10:00:01 UTC
    assert found(until="2026-11-21T22:00:00-12:00") == 0  # until is exclusive
    assert found(since="2026-11-22T09:59:59", until="2026-11-22T10:00:01") == 1  # no offset: UTC
    assert found(since="2026-11-22T09:00:00-12:00") == 0  # 21:00 UTC
