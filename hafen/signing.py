"""Signed messages from the hub: a JSON header and an opaque body, sealed with Ed25519.

Wire format (all integers big-endian)::

    b"HFS1" | header length (u32) | header (UTF-8 JSON) | body | signature (64 bytes)

The signature covers every byte before it, so neither header nor body can be changed, and the
header names the site (and device) it is for, so a message cannot be replayed elsewhere.
"""

from __future__ import annotations

import base64
import json
import struct
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

MAGIC = b"HFS1"
SIGNATURE_BYTES = 64
_LENGTH = struct.Struct(">I")
MAX_HEADER_BYTES = 64 * 1024


class BadSignedMessage(ValueError):
    """The bytes are not a well-formed signed message, or no trusted key signed them."""


@dataclass(frozen=True)
class SignedMessage:
    """A verified message: its header fields, its body bytes and the trusted key that signed it
    (a door keeps which key vouched for its list, so a self-test can tell it is still trusted)."""

    header: dict[str, Any]
    body: bytes
    signer: Ed25519PublicKey | None = None


def seal(key: Ed25519PrivateKey, header: dict[str, Any], body: bytes = b"") -> bytes:
    """Build and sign a message."""
    head = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    signed = MAGIC + _LENGTH.pack(len(head)) + head + body
    return signed + key.sign(signed)


def open_sealed(data: bytes, trusted: list[Ed25519PublicKey]) -> SignedMessage:
    """Check the framing and the signature against the trusted keys; return the contents."""
    body_start = _body_start(data)
    signed, signature = data[:-SIGNATURE_BYTES], data[-SIGNATURE_BYTES:]
    signer = next((key for key in trusted if _verifies(key, signature, signed)), None)
    if signer is None:
        raise BadSignedMessage("signature does not verify with any trusted hub key")
    return _contents(data, body_start, signer)


def read_own_sealed(data: bytes) -> SignedMessage:
    """The contents of a message the reader sealed and kept itself (the hub reading a release
    manifest back from its own store, where the key that signed it may not be at hand), its
    framing checked but **not** its signature (``signer`` is None). Never for what arrived
    from elsewhere: that is ``open_sealed``'s."""
    return _contents(data, _body_start(data), None)


def _body_start(data: bytes) -> int:
    if len(data) < len(MAGIC) + _LENGTH.size + SIGNATURE_BYTES or not data.startswith(MAGIC):
        raise BadSignedMessage("not a signed hafen message")
    head_len: int = _LENGTH.unpack_from(data, len(MAGIC))[0]
    body_start = len(MAGIC) + _LENGTH.size + head_len
    if head_len > MAX_HEADER_BYTES or body_start > len(data) - SIGNATURE_BYTES:
        raise BadSignedMessage("header length out of range")
    return body_start


def _contents(data: bytes, body_start: int, signer: Ed25519PublicKey | None) -> SignedMessage:
    try:
        header = json.loads(data[len(MAGIC) + _LENGTH.size : body_start])
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise BadSignedMessage("header is not JSON") from None
    if not isinstance(header, dict):
        raise BadSignedMessage("header is not a JSON object")
    return SignedMessage(header, data[body_start:-SIGNATURE_BYTES], signer)


def _verifies(key: Ed25519PublicKey, signature: bytes, signed: bytes) -> bool:
    try:
        key.verify(signature, signed)
    except InvalidSignature:
        return False
    return True


def public_key_from_text(text: str) -> Ed25519PublicKey:
    """Read a public key written as base64 of its 32 raw bytes (the form configs carry)."""
    try:
        raw = base64.b64decode(text, validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        raise ValueError("a hub public key is the base64 of 32 raw Ed25519 bytes") from None


def public_key_text(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """Write a public key as base64 of its raw bytes."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return base64.b64encode(public.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
