"""Schemathesis against the hub's OpenAPI schema: whatever a client sends, never a 500."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from hub import db
from hub.app import create_app
from hub.auth import Role, create_user, issue_token

KEY = bytes.fromhex("0123456789abcdef" * 2)
HEADERS: dict[str, str] = {}


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory):
    engine = db.connect(f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'hub.db'}")
    admin = create_user(engine, "nadia", "a long passphrase", Role.NETWORK_ADMIN)
    HEADERS["Authorization"] = f"Bearer {issue_token(engine, admin, 'fuzz')}"
    with engine.begin() as conn:
        conn.execute(db.sites.insert().values(id="leipzig-ost", timezone="Europe/Berlin"))
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(engine, KEY))


def test_no_request_makes_the_hub_fail(api_schema):
    """Every operation, fed what the schema allows and more; the pytest plugin of this
    schemathesis release does not run on pytest 9, so hypothesis drives it directly."""
    failures = []
    for result in api_schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        def run(case) -> None:
            response = case.call(headers=HEADERS)
            if response.status_code == 500:  # 503 "no broker" is an answer, not a failure
                failures.append(f"{case.method} {case.formatted_path}: {response.status_code}")

        run()
    assert failures == []
