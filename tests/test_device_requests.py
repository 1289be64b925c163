"""A door's signed HTTPS requests: what the hub can tell from them, and what it refuses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from hafen.device_requests import (
    CERTIFICATE_HEADER,
    SIGNATURE_HEADER,
    RequestRefused,
    read_signed_request,
    signed_request_headers,
)

NOW = datetime(2026, 12, 8, 1, 0, tzinfo=UTC)
PATH = "/device/releases/1.4.0/manifest"


def identity(
    name: str = "leipzig-ost.door-1",
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=90))
        .sign(key, hashes.SHA256())
    )
    return key, cert


def test_a_signed_request_names_the_certificate_that_signed_it() -> None:
    key, cert = identity()
    headers = signed_request_headers(key, cert, "get", PATH, NOW)
    assert read_signed_request(headers, "GET", PATH, NOW + timedelta(seconds=3)) == cert


@pytest.mark.parametrize(
    ("method", "path", "now", "why"),
    [
        ("GET", "/device/releases/1.4.0/files/x.whl", NOW, "does not verify"),
        ("POST", PATH, NOW, "does not verify"),
        ("GET", PATH, NOW + timedelta(minutes=6), "too far"),
        ("GET", PATH, NOW - timedelta(minutes=6), "too far"),
    ],
)
def test_a_request_for_another_path_or_time_is_refused(
    method: str, path: str, now: datetime, why: str
) -> None:
    key, cert = identity()
    headers = signed_request_headers(key, cert, "GET", PATH, NOW)
    with pytest.raises(RequestRefused, match=why):
        read_signed_request(headers, method, path, now)


def test_a_certificate_signed_for_by_another_key_is_refused() -> None:
    key, _ = identity()
    _, someone_else = identity()
    headers = signed_request_headers(key, someone_else, "GET", PATH, NOW)
    with pytest.raises(RequestRefused, match="does not verify"):
        read_signed_request(headers, "GET", PATH, NOW)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {CERTIFICATE_HEADER: "AAAA"},
        {CERTIFICATE_HEADER: "not base64!", SIGNATURE_HEADER: "2026-12-08T01:00:00+00:00 AAAA"},
        {CERTIFICATE_HEADER: "QUJD", SIGNATURE_HEADER: "yesterday AAAA"},
        {CERTIFICATE_HEADER: "A" * 5000, SIGNATURE_HEADER: "x"},
        {CERTIFICATE_HEADER: "QUJD", SIGNATURE_HEADER: "2026-12-08T01:00:00 AAAA"},
    ],
)
def test_missing_oversized_or_garbled_headers_are_refused(headers: dict[str, str]) -> None:
    with pytest.raises(RequestRefused):
        read_signed_request(headers, "GET", PATH, NOW)
