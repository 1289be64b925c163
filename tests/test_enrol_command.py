"""`hafen provision enrol` on the Pi, against a stand-in hub: whom it trusts for the hub,
where it takes the token from, and what it checks before the token is spent."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from hafen.cli import app
from tests.support.stand_in_hub import StandInHub

runner = CliRunner()
TOKEN = "2rfp24tpsey6irzsf3lxznfr7l323jbqlp4xmvltuxeykhtbgh2a"


@pytest.fixture
def plain_hub(tmp_path):
    """The hub over plain HTTP on loopback (which enrolment allows, for tests)."""
    with StandInHub(tmp_path, TOKEN, tls=False) as running:
        yield running


def _enrol(pi: Path, url: str, token: str, *options: str, stdin: str | None = None):
    arguments = ["provision", "enrol", url, token, "--etc", str(pi / "etc")]
    arguments += ["--state-dir", str(pi / "state"), *options]
    return runner.invoke(app, arguments, input=stdin)


def test_an_unknown_agent_user_fails_before_the_token_is_spent(plain_hub, tmp_path):
    hub, pi = plain_hub, tmp_path / "pi"
    result = _enrol(pi, hub.url, TOKEN, "--owner", "no-such-hafen-user")
    assert result.exit_code == 1 and "no-such-hafen-user" in result.output, result.output
    assert hub.requests == [] and not pi.exists()
    assert _enrol(pi, hub.url, TOKEN).exit_code == 0  # the token is still good
