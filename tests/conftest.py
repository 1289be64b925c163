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
