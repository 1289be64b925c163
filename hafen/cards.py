"""Card identities: raw UIDs come in at a reader or an API, only keyed hashes are kept.

The hash is an HMAC over the UID with a network-wide key that the hub and every edge share, so
an access list compiled at the hub matches what a reader sees, while a stolen database or log
reveals no UID (and cannot be brute-forced without the key).
"""

from __future__ import annotations

import hashlib
import hmac
import re

#: Bytes of HMAC-SHA256 kept: 128 bits rule out collisions among any realistic number of cards.
CARD_HASH_BYTES = 16
#: UID lengths seen on cards: ISO 14443-A single/double/triple size, 14443-B PUPI, FeliCa IDm.
UID_LENGTHS = (4, 7, 8, 10)
_DOMAIN = b"hafen-card-v1\x00"
_SEPARATORS = re.compile(r"[\s:\-]")


#: The shortest card-hash key the network accepts, in bytes (128 bits).
MIN_KEY_BYTES = 16
_KEY_TEXT = re.compile(rf"(?:[0-9a-fA-F]{{2}}){{{MIN_KEY_BYTES},}}")


def parse_card_key(text: str) -> bytes:
    """The network's card-hash key from its hex text (a key file's content, stripped); a
    ValueError says what a key must be. The doors and the hub check it by this one rule."""
    if not _KEY_TEXT.fullmatch(text):
        raise ValueError(
            f"the card hash key is at least {2 * MIN_KEY_BYTES} hex digits ({MIN_KEY_BYTES} bytes)"
        )
    return bytes.fromhex(text)


class InvalidUid(ValueError):
    """The text given as a card UID is not one."""


def parse_uid(text: str) -> bytes:
    """Parse a UID written as hex, with or without ``:``, ``-`` or spaces between bytes."""
    cleaned = _SEPARATORS.sub("", text)
    try:
        uid = bytes.fromhex(cleaned)
    except ValueError:
        raise InvalidUid(
            "a card UID is written in hex digits, for example 04A1B2C3D4E5F6"
        ) from None
    if len(uid) not in UID_LENGTHS:
        raise InvalidUid(f"a card UID has 4, 7, 8 or 10 bytes, this one has {len(uid)}")
    return uid


def card_hash(key: bytes, uid: bytes) -> str:
    """Return the keyed hash (hex) under which a card is stored and reported."""
    digest = hmac.new(key, _DOMAIN + uid, hashlib.sha256).digest()
    return digest[:CARD_HASH_BYTES].hex()


def short(card: str) -> str:
    """Shorten a card hash for log lines: enough to correlate, never a UID."""
    return f"card:{card[:8]}"
