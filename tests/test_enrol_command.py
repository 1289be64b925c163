"""`hafen provision enrol` on the Pi, against the real hub (served over HTTPS with a certificate
from the network's own CA, or plain HTTP on loopback): whom it trusts for the hub, where it
takes the token from, and that what it refuses does not spend the token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hafen.cli import app
from tests.support.provisioned import ProvisionedNetwork

runner = CliRunner()
SITE, DEVICE = "leipzig-ost", "front-door"


def _network(root: Path, https: bool) -> Iterator[ProvisionedNetwork]:
    root.mkdir()
    net = ProvisionedNetwork(root, https=https)
    net.add_site(SITE)
    try:
        yield net
    finally:
        net.close()


@pytest.fixture
def hub(tmp_path):
    """The hub over HTTPS, its certificate from the network's private CA."""
    yield from _network(tmp_path / "hub", https=True)


@pytest.fixture
def plain_hub(tmp_path):
    """The hub over plain HTTP on loopback (which enrolment allows, for tests)."""
    yield from _network(tmp_path / "hub", https=False)


def _enrol(pi: Path, url: str, token: str, *options: str, stdin: str | None = None):
    arguments = ["provision", "enrol", url, token, "--etc", str(pi / "etc")]
    arguments += ["--state-dir", str(pi / "state"), *options]
    return runner.invoke(app, arguments, input=stdin)


def test_a_hub_with_a_private_ca_is_trusted_only_when_given(hub, tmp_path):
    pi, token = tmp_path / "pi", hub.token_for(SITE, DEVICE)
    refused = _enrol(pi, hub.url, token)
    assert refused.exit_code == 1, refused.output
    assert "certificate" in refused.output and "--hub-ca" in refused.output
    assert not pi.exists()
    # The same token works now: the refused attempt never reached the hub with it.
    enrolled = _enrol(pi, hub.url, token, "--hub-ca", str(hub.files.ca_cert))
    assert enrolled.exit_code == 0, enrolled.output
    assert f"enrolled as {SITE}/{DEVICE}" in enrolled.output
    assert (pi / "etc" / "edge.toml").is_file()


def test_a_hub_ca_that_is_not_one_is_refused_before_the_token_is_spent(hub, tmp_path):
    token = hub.token_for(SITE, DEVICE)
    not_a_ca = tmp_path / "hub-ca.pem"
    not_a_ca.write_text("not a certificate\n")
    result = _enrol(tmp_path / "pi", hub.url, token, "--hub-ca", str(not_a_ca))
    assert result.exit_code == 1 and str(not_a_ca) in result.output, result.output
    good = _enrol(tmp_path / "pi", hub.url, token, "--hub-ca", str(hub.files.ca_cert))
    assert good.exit_code == 0, good.output


def test_the_token_can_come_from_standard_input_out_of_ps_and_history(plain_hub, tmp_path):
    token = plain_hub.token_for(SITE, DEVICE)
    enrolled = _enrol(tmp_path / "pi", plain_hub.url, "-", stdin=f"  {token}\r\nmore\n")
    assert enrolled.exit_code == 0, enrolled.output
    empty = _enrol(tmp_path / "again", plain_hub.url, "-", stdin="")
    assert empty.exit_code == 1 and "standard input" in empty.output, empty.output
    assert not (tmp_path / "again").exists()


def test_an_unknown_agent_user_fails_before_the_token_is_spent(plain_hub, tmp_path):
    pi, token = tmp_path / "pi", plain_hub.token_for(SITE, DEVICE)
    result = _enrol(pi, plain_hub.url, token, "--owner", "no-such-hafen-user")
    assert result.exit_code == 1 and "no-such-hafen-user" in result.output, result.output
    assert not pi.exists()
    assert _enrol(pi, plain_hub.url, token).exit_code == 0  # the token is still good
