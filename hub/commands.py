"""Sealed commands from the hub to one device (remote unlock, re-send state)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hafen import protocol
from hafen.signing import seal


def command_message(
    key: Ed25519PrivateKey,
    site: str,
    device: str,
    name: str,
    args: dict | None = None,
    issued_at: datetime | None = None,
) -> tuple[str, bytes, str]:
    """Build a sealed command; returns (topic, payload, command id)."""
    if name not in protocol.COMMANDS:
        raise ValueError(f"unknown command {name!r}")
    command_id = uuid.uuid4().hex
    header = {
        "type": "command",
        "name": name,
        "site": site,
        "device": device,
        "id": command_id,
        "issued_at": (issued_at or datetime.now(UTC)).isoformat(),
        "args": args or {},
    }
    return protocol.command_topic(site, device, name), seal(key, header), command_id
