"""What the tests share, by subject: helpers imported as ``tests.support.<subject>``, and
fixtures that ``tests/conftest.py`` makes available to every test."""
