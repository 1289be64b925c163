"""What a renewal does to a door's files: the pending key, the checks a certificate from the
hub must pass, and an installation that a crash cannot leave with a pair that does not fit."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from edge.agent.renewal import (
    CertificateRefused,
    CertificateRenewal,
    IdentityFiles,
    check_offer,
    finish_interrupted,
    install,
    install_certificate,
    pending_key,
)
from hub.pki import issue_device_certificate
from tests.support.tls import device_identity, make_ca, request_for

ME = "leipzig-ost.door-1"


@pytest.fixture
def door(tmp_path):
    """A door as enrolment left it: its key, its certificate, the CA's certificate."""
    ca = make_ca(tmp_path)
    tls = tmp_path / "tls"
    tls.mkdir(mode=0o700)
    cert, key = device_identity(tls, ca, "leipzig-ost", "door-1")
    return ca, IdentityFiles(cert, key, ca.ca_cert)


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _issue(ca, key, device="door-1", lifetime=timedelta(days=91)) -> x509.Certificate:
    request = request_for(key, "whatever")
    return issue_device_certificate(ca, request, "leipzig-ost", device, lifetime)


def _fits(files: IdentityFiles) -> bool:
    """Whether TLS takes the pair, as paho's tls_set does when the link makes its client."""
    try:
        ssl.create_default_context().load_cert_chain(files.certificate, files.key)
    except ssl.SSLError:
        return False
    return True


def test_the_pending_key_is_owner_only_and_the_same_until_installed(door):
    _ca, files = door
    key = pending_key(files)
    assert files.pending.stat().st_mode & 0o777 == 0o600
    assert pending_key(files).private_numbers() == key.private_numbers()  # a restart asks again


def test_only_a_certificate_for_the_pending_key_from_the_ca_naming_the_door_is_taken(
    door, tmp_path
):
    ca, files = door
    with pytest.raises(CertificateRefused, match="no renewal is pending"):
        check_offer(files, ME, _pem(_issue(ca, ec.generate_private_key(ec.SECP256R1()))))
    key = pending_key(files)
    other_ca = make_ca(tmp_path, "other")
    refused = {
        "not for the pending key": _pem(_issue(ca, ec.generate_private_key(ec.SECP256R1()))),
        "does not check out": _pem(_issue(other_ca, key)),
        "names another device": _pem(_issue(ca, key, device="door-2")),
        "no later than the current one": _pem(_issue(ca, key, lifetime=timedelta(days=30))),
        "carries no certificate": 42,
    }
    for why, offer in refused.items():
        with pytest.raises(CertificateRefused, match=why):
            check_offer(files, ME, offer)
    with pytest.raises(CertificateRefused, match="has ended"):
        check_offer(files, ME, _pem(_issue(ca, key)), now=datetime.now(UTC) + timedelta(days=92))
    cert, _pem_bytes = check_offer(files, ME, _pem(_issue(ca, key)))
    assert cert.public_key() == key.public_key()


def test_a_crash_midway_through_installing_is_finished_at_the_next_start(door):
    ca, files = door
    assert _fits(files)
    key = pending_key(files)
    _cert, pem = check_offer(files, ME, _pem(_issue(ca, key)))
    # Nothing to finish while the pending key still waits for its certificate.
    assert not finish_interrupted(files) and files.pending.exists()
    install_certificate(files, pem)  # ... and the agent stops here
    assert not _fits(files)  # the new certificate with the old key
    assert finish_interrupted(files)  # the next start, before the link loads the pair
    assert _fits(files) and not files.pending.exists()
    assert files.key.stat().st_mode & 0o777 == 0o600


def test_an_installation_leaves_the_new_pair(door):
    ca, files = door
    key = pending_key(files)
    cert, pem = check_offer(files, ME, _pem(_issue(ca, key)))
    install(files, pem)
    assert _fits(files) and not files.pending.exists()
    on_disk = x509.load_pem_x509_certificate(files.certificate.read_bytes())
    assert on_disk.serial_number == cert.serial_number
    assert files.certificate.stat().st_mode & 0o777 == 0o600


def test_a_failed_installation_is_finished_not_thrown_away(door):
    """The certificate was installed, renaming the pending key over the key failed, and the
    agent ran on: its next look finds the certificate not due, and must adopt the pending
    key (the new certificate's only key), not delete it as left over."""
    ca, files = door
    key = pending_key(files)
    install_certificate(files, _pem(_issue(ca, key)).encode())  # the first half of install()
    assert not _fits(files)
    renewal = CertificateRenewal(
        files,
        "leipzig-ost",
        "door-1",
        link=None,  # type: ignore[arg-type]  # not due: it does not ask the hub
        record=lambda _e: None,
    )
    renewal._look()
    assert _fits(files) and not files.pending.exists()
