"""A door's proof that a state it reports is its own, until devices have identities of their own.

The broker lets any client publish anywhere today (per-device rights come with provisioning),
so a third party could publish a door's retained state: claim it is online on the newest list
while it still holds an older one. Each door therefore seals its state with an HMAC under a
key only the doors and the hub can derive: HKDF-SHA256 from the network's card-hash key, bound
to the door's site and device id. Whoever holds no card key cannot forge a state the hub
believes; a door cannot speak for another door's id either, short of holding the card key
(which a stolen door does: the broker's per-device identities are the cure for that).

The MAC covers a canonical text of the fields the hub acts on, not JSON bytes, so a change of
serialiser on either side cannot break it.
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from hafen.protocol import DeviceState

_INFO = b"hafen-device-proof-v1\x00"
PROOF_BYTES = 32


def device_key(card_key: bytes, site: str, device: str) -> bytes:
    """The key one door seals its states with: derived, never stored or sent."""
    hkdf = HKDF(
        algorithm=hashes.SHA256(),
        length=PROOF_BYTES,
        salt=None,
        info=_INFO + f"{site}/{device}".encode(),
    )
    return hkdf.derive(card_key)


def _canonical(site: str, device: str, state: DeviceState) -> bytes:
    at = "" if state.at is None else state.at.isoformat()
    faults = ";".join(f"{k}={v}" for k, v in sorted(state.faults.items()))
    fields = (
        site,
        device,
        "online" if state.online else "offline",
        str(state.session),
        state.epoch or "",
        state.software or "",
        "" if state.acl_version is None else str(state.acl_version),
        "" if state.seen_version is None else str(state.seen_version),
        str(state.takeovers),
        faults,
        at,
    )
    return "\n".join(fields).encode()


def seal_state(key: bytes, site: str, device: str, state: DeviceState) -> DeviceState:
    """The state with its ``proof`` set."""
    mac = hmac.new(key, _canonical(site, device, state), hashlib.sha256).hexdigest()
    return state.model_copy(update={"proof": mac})


def state_is_genuine(key: bytes, site: str, device: str, state: DeviceState) -> bool:
    """Whether ``state`` carries a proof made with ``key`` over exactly these fields."""
    if state.proof is None:
        return False
    expected = hmac.new(key, _canonical(site, device, state), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, state.proof)
