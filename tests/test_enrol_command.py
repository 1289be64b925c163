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
def hub(tmp_path):
    """The hub over HTTPS, its certificate from a private CA."""
    with StandInHub(tmp_path, TOKEN) as running:
        yield running


@pytest.fixture
def plain_hub(tmp_path):
    """The hub over plain HTTP on loopback (which enrolment allows, for tests)."""
    with StandInHub(tmp_path, TOKEN, tls=False) as running:
        yield running


def _enrol(pi: Path, url: str, token: str, *options: str, stdin: str | None = None):
    arguments = ["provision", "enrol", url, token, "--etc", str(pi / "etc")]
    arguments += ["--state-dir", str(pi / "state"), *options]
    return runner.invoke(app, arguments, input=stdin)


def test_a_hub_with_a_private_ca_is_trusted_only_when_given(hub, tmp_path):
    pi = tmp_path / "pi"
    refused = _enrol(pi, hub.url, TOKEN)
    assert refused.exit_code == 1, refused.output
    assert "certificate" in refused.output and "--hub-ca" in refused.output
    assert hub.requests == [] and not pi.exists()  # the token never left the Pi
    enrolled = _enrol(pi, hub.url, TOKEN, "--hub-ca", str(hub.ca.ca_cert))
    assert enrolled.exit_code == 0, enrolled.output
    assert "enrolled as leipzig-ost/front-door" in enrolled.output
    assert (pi / "etc" / "edge.toml").is_file()


def test_a_hub_ca_that_is_not_one_is_refused_before_the_token_is_spent(hub, tmp_path):
    not_a_ca = tmp_path / "hub-ca.pem"
    not_a_ca.write_text("not a certificate\n")
    result = _enrol(tmp_path / "pi", hub.url, TOKEN, "--hub-ca", str(not_a_ca))
    assert result.exit_code == 1 and str(not_a_ca) in result.output, result.output
    assert hub.requests == []


def test_the_token_can_come_from_standard_input_out_of_ps_and_history(plain_hub, tmp_path):
    hub = plain_hub
    enrolled = _enrol(tmp_path / "pi", hub.url, "-", stdin=f"  {TOKEN}\r\nmore\n")
    assert enrolled.exit_code == 0, enrolled.output
    assert [r.token for r in hub.requests] == [TOKEN]
    empty = _enrol(tmp_path / "again", hub.url, "-", stdin="")
    assert empty.exit_code == 1 and "standard input" in empty.output, empty.output
    assert len(hub.requests) == 1 and not (tmp_path / "again").exists()


def test_an_unknown_agent_user_fails_before_the_token_is_spent(plain_hub, tmp_path):
    hub, pi = plain_hub, tmp_path / "pi"
    result = _enrol(pi, hub.url, TOKEN, "--owner", "no-such-hafen-user")
    assert result.exit_code == 1 and "no-such-hafen-user" in result.output, result.output
    assert hub.requests == [] and not pi.exists()
    assert _enrol(pi, hub.url, TOKEN).exit_code == 0  # the token is still good
