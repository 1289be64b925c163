"""What the Pi checks of the hub's answer before it writes anything (edge.agent.enrolment)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from edge.agent.enrolment import (
    DevicePaths,
    EnrolmentFailed,
    check_bundle,
    check_config,
    compose_config,
    hub_url,
    request_for,
)
from hafen.enrolment import EnrolmentBundle
from hub.pki import issue_device_certificate
from tests.support.tls import make_ca

PEM = serialization.Encoding.PEM


def _bundle(ca_pem: str, cert_pem: str, username: str = "leipzig-ost.door-1") -> EnrolmentBundle:
    return EnrolmentBundle.model_validate(
        {
            "site": {"id": "leipzig-ost", "timezone": "Europe/Berlin"},
            "device": "door-1",
            "kind": "door",
            "certificate": cert_pem,
            "ca_certificate": ca_pem,
            "not_after": "2100-01-01T00:00:00Z",
            "hub_public_keys": ["WAIGItqD+Q+p7KxQKUaL8x/nGdxG/q7419gYeCypkuI="],
            "card_key": "0" * 64,
            "broker": {"host": "hub", "port": 8883, "username": username, "password": "p" * 16},
        }
    )


def test_the_certificate_must_be_for_this_key_this_device_and_from_this_ca(tmp_path):
    ours, theirs = make_ca(tmp_path, "ours"), make_ca(tmp_path, "theirs")  # the same CA name
    key = ec.generate_private_key(ec.SECP256R1())
    csr = request_for(key).encode()
    cert = issue_device_certificate(ours, csr, "leipzig-ost", "door-1").public_bytes(PEM).decode()
    ca = ours.ca_cert.read_text()
    check_bundle(_bundle(ca, cert), key)  # the good one passes
    forged = issue_device_certificate(theirs, csr, "leipzig-ost", "door-1")
    cases = [
        (_bundle(ca, forged.public_bytes(PEM).decode()), "does not check out"),
        (_bundle(ca, cert), "not for the key"),
        (_bundle(ca, cert, username="leipzig-ost.door-2"), "names another device"),
        (_bundle(ca, "not a certificate"), "does not check out"),
    ]
    other_key = ec.generate_private_key(ec.SECP256R1())
    for index, (bundle, why) in enumerate(cases):
        with pytest.raises(EnrolmentFailed, match=why):
            check_bundle(bundle, other_key if index == 1 else key)


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://hub.example.org/", True),
        ("http://127.0.0.1:8080", True),
        ("http://localhost", True),
        ("http://hub.example.org", False),
        ("ftp://hub.example.org", False),
        ("hub.example.org", False),
    ],
)
def test_the_card_key_travels_only_over_https_or_on_this_machine(url, allowed):
    if allowed:
        assert not hub_url(url).endswith("/")
    else:
        with pytest.raises(EnrolmentFailed):
            hub_url(url)
    assert hub_url("http://hub.example.org", allow_http=True) == "http://hub.example.org"


@pytest.mark.parametrize(
    ("hub", "hub_ca", "updates"),
    [
        ("https://hub.example.org", False, {"hub_url": "https://hub.example.org"}),
        ("https://hub.example.org", True, {"hub_url": "https://hub.example.org", "ca": True}),
        ("http://127.0.0.1:8000", False, {"hub_url": "http://127.0.0.1:8000"}),
        ("http://hub.example.org", False, None),  # releases never over plain http
    ],
)
def test_a_hub_with_release_keys_gives_the_door_its_updates(tmp_path, hub, hub_ca, updates):
    release_key = "2pD3FCQO13dOx7rP3o6axWtNUpbos3PVNk/TB6e66Qk="
    bundle = _bundle("-", "-").model_copy(update={"release_keys": [release_key]})
    paths = DevicePaths(etc=tmp_path / "etc", state=tmp_path / "state")
    wiring = {"door": {"strike": {"pin": 17}, "contact": {"pin": 27}}}
    config = compose_config(paths, wiring, bundle, hub, hub_ca)
    if updates is None:
        assert "updates" not in config
        return
    expected = {"hub_url": updates["hub_url"], "release_keys": [release_key]}
    if updates.get("ca"):
        expected["hub_ca_file"] = str(tmp_path / "etc" / "hub-ca.crt")
    assert config["updates"] == expected
    check_config(config, "0" * 64)  # the agent's own loader takes it
    plain = compose_config(paths, wiring, _bundle("-", "-"), hub, hub_ca)
    assert "updates" not in plain  # a hub that rolls out nothing
