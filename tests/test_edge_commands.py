"""Commands from the hub at the door: signature, addressee, age, and never twice, even across
a restart of the agent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.agent.remote import CommandRefused, CommandVerifier
from edge.agent.store import EdgeStore
from hub.commands import command_message

HUB_KEY = Ed25519PrivateKey.generate()


def verifier(store: EdgeStore | None = None) -> CommandVerifier:
    return CommandVerifier("borna", "door-1", [HUB_KEY.public_key()], store)


def unlock(now: datetime, device: str = "door-1", key=HUB_KEY) -> bytes:
    return command_message(key, "borna", device, "unlock", {"seconds": 5}, now)[1]


def test_an_unlock_is_carried_out_once_even_after_a_restart(tmp_path):
    now = datetime.now(UTC)
    payload = unlock(now)
    store = EdgeStore(tmp_path / "edge.db")
    assert verifier(store).verify("unlock", payload, now).args == {"seconds": 5}
    store.close()
    restarted = verifier(EdgeStore(tmp_path / "edge.db"))  # the agent came back at once
    with pytest.raises(CommandRefused, match="already carried out"):
        restarted.verify("unlock", payload, now + timedelta(seconds=20))
    later = now + timedelta(minutes=10)
    restarted.verify("unlock", unlock(later), later)
    assert len(restarted._seen) == 1, "ids past twice the age limit are forgotten"


@pytest.mark.parametrize(
    ("issued", "changes", "reason"),
    [
        (timedelta(minutes=-3), {}, "too old"),
        (timedelta(minutes=3), {}, "from the future"),
        (timedelta(0), {"device": "door-2"}, "another device"),
        (timedelta(0), {"key": Ed25519PrivateKey.generate()}, "signature|trusted"),
    ],
)
def test_stale_misaddressed_and_forged_commands_are_refused(issued, changes, reason):
    now = datetime.now(UTC)
    with pytest.raises(CommandRefused, match=reason):
        verifier().verify("unlock", unlock(now + issued, **changes), now)
