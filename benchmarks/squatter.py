"""How long a blocked member's card keeps working at a door whose client id is being squatted.

Issue 13's attack: a client on the broker takes over the door's client id whenever the door
reconnects and every few seconds besides (wiping its session and anything queued in it), puts
the old signed list back as the site's retained list and forges the door's state. An admin
blocks a member through the hub's API. The figures are the time from the block to the door
holding the list with it (a tap is then refused, which the run checks) and to the hub showing
the door unverified, beside the same without a squatter in the same run, and for a stronger
squatter that also puts the old list back the moment anything else appears on the list topic.

Everything is real except the people: mosquitto, the hub's API with its list watch and default
limits as `hafen hub serve` runs it, ingest, and an edge agent with the shipped MQTT settings
(reconnect backoff up to 60 s) on mock pins and nfcpy's UDP reader.

    .venv/bin/python benchmarks/squatter.py [--trials 3] [--every 2]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import _path  # noqa: F401  (the project root on sys.path)
from gpiozero import Device
from gpiozero.pins.mock import MockFactory

from edge.agent.agent import EdgeAgent
from edge.agent.config import EdgeConfig
from edge.agent.store import EdgeStore
from hafen import protocol
from hafen.config import validate_config
from hub.auth import Role
from sim.broker import LocalBroker
from sim.card_emulator import EmulatedCard
from sim.door import shut_door
from sim.squatter import Squatter
from tests.support.edge import CARD_KEY, edge_config_dict, free_udp_port, outbox
from tests.support.hub import api_client, sign_in_as
from tests.support.intruder import retained
from tests.support.network import TestHub, acl_version
from tests.support.waiting import wait_for

SITE = "leipzig-ost"
ANNA = "04A1B2C3D4E5F6"


def door_config(tmp: Path, port: int, public_key: str) -> EdgeConfig:
    """A door with the shipped MQTT settings (keepalive, reconnect backoff to 60 s)."""
    raw = edge_config_dict(tmp, reader=f"udp:127.0.0.1:{free_udp_port()}")
    raw["site"]["id"] = SITE
    raw["device"]["id"] = "door-1"
    raw["mqtt"] = {"host": "127.0.0.1", "port": port}
    raw["hub"] = {"public_keys": [public_key]}
    return validate_config(raw, EdgeConfig)


@contextmanager
def network(tmp: Path):
    """Broker, hub (ingest + API with its list watch) and one door, with anna let in."""
    Device.pin_factory = MockFactory()
    with LocalBroker(tmp / "broker") as broker:
        hub = TestHub(tmp, broker).start()
        try:
            with api_client(hub.engine, CARD_KEY, hub.publisher) as api:
                api.headers.update(sign_in_as(api, Role.NETWORK_ADMIN))
                for path, body in (
                    ("/sites", {"id": SITE, "name": "Leipzig-Ost"}),
                    (f"/sites/{SITE}/devices", {"id": "door-1"}),
                    ("/plans", {"id": "flex"}),
                    ("/members", {"id": "anna", "name": "Anna"}),
                    ("/members/anna/grants", {"plan": "flex"}),
                    ("/members/anna/cards", {"uid": ANNA}),
                ):
                    assert api.post(path, json=body).status_code == 201, path
                cfg = door_config(tmp, broker.port, hub.public_key)
                store = EdgeStore(cfg.store.path, cfg.store.synchronous)
                agent = EdgeAgent(cfg, store)
                agent.start()
                shut_door(cfg.door)
                try:
                    assert wait_for(lambda: acl_version(agent) >= 1, 30), "no list at the door"
                    yield hub, api, agent, EmulatedCard(cfg.reader.path)
                finally:
                    agent.stop()
                    store.close()
        finally:
            hub.stop()
            Device.pin_factory.close()


def refused(agent: EdgeAgent) -> bool:
    decisions = [body for kind, body in outbox(agent.store) if kind == "door.decision"]
    return bool(decisions) and decisions[-1].get("reason") == "blocked"


#: The attackers, weakest first: none; one that squats the door's client id whenever it
#: reconnects (and every few seconds), putting the old list back each time; and one that also
#: puts the old list back the moment anything else appears on the list topic.
ATTACKERS = {
    "alone": None,
    "squatted": {"reactive": True},
    "squatted+guarded": {"reactive": True, "guard_list": True},
}


def unverified(api) -> bool:
    rows = api.get("/fleet").json()
    return any(r["device"] == "door-1" and r["unverified"] for r in rows)


def trial(attacker: dict | None, every: float, give_up: float) -> tuple[float, float]:
    """Seconds from the block to the door holding the list with it, and to the hub showing
    the door unverified (inf: not within ``give_up``)."""
    with tempfile.TemporaryDirectory() as tmp, network(Path(tmp)) as (hub, api, agent, card):
        letting_in = acl_version(agent)
        squatter = None
        if attacker is not None:
            old_list = retained(hub.broker.port, protocol.acl_topic(SITE))
            squatter = Squatter(
                hub.broker.port, SITE, "door-1", old_list, letting_in + 1, every, **attacker
            ).start()
            assert wait_for(lambda: squatter.takeovers >= 2, 20)
            time.sleep(random.uniform(0, every))  # any phase of the squatter's round
        try:
            blocked_at = time.monotonic()
            assert api.post("/members/anna/block").status_code == 204
            held_after = flagged_after = float("inf")
            while time.monotonic() - blocked_at < give_up:
                elapsed = time.monotonic() - blocked_at
                if held_after == float("inf") and acl_version(agent) > letting_in:
                    held_after = elapsed
                    assert card.present(bytes.fromhex(ANNA)) is not None
                    assert wait_for(lambda: refused(agent), 10), "the blocked card was let in"
                    break
                if flagged_after == float("inf") and unverified(api):
                    flagged_after = elapsed
                time.sleep(0.05)
            return held_after, flagged_after
        finally:
            if squatter is not None:
                squatter.stop()


def seconds(value: float) -> str:
    return "   never" if value == float("inf") else f"{value:7.3f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--every", type=float, default=2.0, help="squatter's round, seconds")
    parser.add_argument("--give-up", type=float, default=90.0, help="seconds per trial")
    args = parser.parse_args()
    held: dict[str, list[float]] = {name: [] for name in ATTACKERS}
    flagged: dict[str, list[float]] = {name: [] for name in ATTACKERS}
    for n in range(args.trials):
        for name, attacker in ATTACKERS.items():  # side by side, interleaved
            took, shown = trial(attacker, args.every, args.give_up)
            held[name].append(took)
            flagged[name].append(shown)
            print(
                f"trial {n + 1} {name:17s} block -> door holds it {seconds(took)},"
                f" -> hub shows it unverified {seconds(shown)}",
                flush=True,
            )
    print()
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(
        f"{args.trials} trials each, squatter's round {args.every:g} s, giving up after"
        f" {args.give_up:g} s; p50 / max:"
    )
    print("  attacker           block -> door refuses her     block -> hub flags the door")
    for name in ATTACKERS:
        h, f = held[name], flagged[name]
        print(
            f"  {name:17s}  {seconds(statistics.median(h))} / {seconds(max(h))}"
            f"      {seconds(statistics.median(f))} / {seconds(max(f))}"
        )
    alone = statistics.median(held["alone"])
    for name in list(ATTACKERS)[1:]:
        ratio = statistics.median(held[name]) / max(alone, 0.001)
        print(f"  ratio {name}/alone (door, p50): {ratio:.0f}")
    print("  a door is flagged only when its list lags 45 s after publication (hub.list_acks)")


if __name__ == "__main__":
    main()
