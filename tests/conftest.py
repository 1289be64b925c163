"""Makes the fixtures in ``tests/support`` available to every test; tests import the helpers
from ``tests.support`` themselves. Real libraries at every boundary, only the physical world
simulated."""

import pytest

# Before the modules are imported: their asserts report values, as in the tests themselves.
pytest.register_assert_rewrite("tests.support")

pytest_plugins = [
    "tests.support.edge",
    "tests.support.hub",
    "tests.support.network",
    "tests.support.provisioned",
    "tests.support.intruder",
    "tests.support.people_browser",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The order and grouping in which xdist (``-n``, ``--dist loadgroup`` in pyproject.toml)
    hands the tests out: tests marked slow first, so that none of them starts last and runs
    alone while the other workers idle; and the tests of a module that share a module-scoped
    fixture (an install into a scratch root, a hub with a browser) on one worker, so that
    the fixture is set up once, not once per worker that happens to run one of them."""
    for item in items:
        fixtures = getattr(item, "_fixtureinfo", None)
        definitions = fixtures.name2fixturedefs.values() if fixtures else ()
        if any(d[-1].scope == "module" for d in definitions):
            item.add_marker(pytest.mark.xdist_group(item.module.__name__))  # type: ignore[attr-defined]
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
