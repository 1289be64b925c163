"""Schemathesis against the hub's OpenAPI schema, on SQLite and PostgreSQL: whatever a client
sends, never a 500.

Two passes per operation: schemathesis's coverage phase (the boundaries of every range, length
and format, each parameter missing, null or of the wrong type) and hypothesis-driven fuzzing
of valid and invalid requests, with NUL characters and any Unicode text the codec allows. Only
the token is fixed, so that every case reaches the route's own checks."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings, strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.core.result import Ok
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.formats import unregister_string_format

from hub import db
from hub.app import create_app
from hub.auth import Role, create_user, issue_token

pytestmark = pytest.mark.slow

KEY = bytes.fromhex("0123456789abcdef" * 2)
#: Fuzzed examples per operation and mode: with the coverage phase, under a minute for both
#: stores on two cores.
EXAMPLES = 12
#: The operations are fuzzed in this many parts, each a test of its own, so that the suite's
#: workers share them (the API outgrew one worker's few minutes with issue 16's routes).
SHARDS = 4
#: Operations left out: signing out would end the token every other case uses (its only input
#: is that token).
LEFT_OUT = {("POST", "/auth/sign-out")}


#: The ends of the calendar and the widest offsets: schemathesis's boundaries are those of a
#: schema's numbers and lengths, and a date's format has none.
EDGE_DAYS = ("0001-01-01", "0001-01-02", "9999-12-30", "9999-12-31")
OFFSETS = ("Z", "+00:00", "+14:00", "-12:00", "+23:59", "-23:59")


def _times() -> st.SearchStrategy[str]:
    edges = st.builds(
        "{}T{}{}".format,
        st.sampled_from(EDGE_DAYS),
        st.sampled_from(("00:00:00", "23:59:59.999999")),
        st.sampled_from(OFFSETS),
    )
    anywhen = st.builds(
        "{}{}".format, st.datetimes().map(datetime.isoformat), st.sampled_from(OFFSETS)
    )
    return edges | anywhen


@pytest.fixture
def date_boundaries() -> Iterator[None]:
    """Dates and times drawn at the ends of their range half the time."""
    schemathesis.openapi.format("date", st.sampled_from(EDGE_DAYS) | st.dates().map(str))
    schemathesis.openapi.format("date-time", _times())
    yield
    unregister_string_format("date")
    unregister_string_format("date-time")


@pytest.fixture
def api_schema(engine, date_boundaries) -> Iterator[tuple[schemathesis.BaseSchema, dict[str, str]]]:
    """The hub's schema over its application on each store, with a site, a member and a
    plan to aim at, and the header of a network admin's token."""
    admin = create_user(engine, "nadia", "a long passphrase", Role.NETWORK_ADMIN)
    headers = {"Authorization": f"Bearer {issue_token(engine, admin, 'fuzz')}"}
    with engine.begin() as conn:
        conn.execute(db.sites.insert().values(id="leipzig-ost", timezone="Pacific/Kiritimati"))
        conn.execute(db.members.insert().values(id="anna", name="Anna", blocked=False))
        conn.execute(db.plans.insert().values(id="flex"))
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(engine, KEY))
    # Unicode: any text UTF-8 can carry, NUL included (PostgreSQL refuses it in text).
    schema.config.generation.update(allow_x00=True, codec="utf-8")
    yield schema, headers


def operations(schema: schemathesis.BaseSchema) -> Iterator[schemathesis.APIOperation]:
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operation = result.ok()
        if (operation.method.upper(), operation.path) not in LEFT_OUT:
            yield operation


@pytest.mark.parametrize("shard", range(SHARDS))
def test_no_request_makes_the_hub_fail(api_schema, shard):
    """Every operation (of this shard), at its boundaries and fed what the schema allows and
    more; the pytest plugin of this schemathesis release does not run on pytest 9, so
    hypothesis drives it."""
    schema, headers = api_schema
    failures: list[str] = []

    def call(case: schemathesis.Case) -> None:
        case.headers.update(headers)  # over any token schemathesis made up
        response = case.call()
        if response.status_code == 500:  # 503 "no broker" is an answer, not a failure
            failures.append(
                f"{case.method} {case.formatted_path} query={case.query!r}"
                f" body={str(case.body)[:200]!r}: {response.text[:200]}"
            )

    for index, operation in enumerate(operations(schema)):
        if index % SHARDS != shard:
            continue
        boundaries = schema.config.generation_for(operation=operation, phase="coverage")
        for case in schema.iter_coverage_cases(
            operation, generation_modes=list(GenerationMode), generation_config=boundaries
        ):
            call(case)
        for mode in GenerationMode:

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                database=None,
            )
            def fuzz(case: schemathesis.Case) -> None:
                call(case)

            try:
                fuzz()
            except Unsatisfiable:  # no parameters, so no invalid request (GET /health)
                assert mode == GenerationMode.NEGATIVE
    assert failures == []
