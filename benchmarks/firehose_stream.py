"""The firehose's data: a hub registry and the event lines its doors publish.

Everything here is plain values (dicts, JSON text) so that any source tree's ingest can be fed
the same stream: the registry is written to a JSON file that benchmarks/firehose_driver.py loads
into that tree's store, and the events are lines of ``EventMessage`` JSON as an edge outbox
sends them (edge.agent.store.OutboxEvent.wire), one file per publisher lane.

The registry is what a real hub holds, so that ingest that believes only what it registered
accepts every event: sites with a capacity, two doors each, plans (network-wide and per site),
members with grants and cards, some with a company. The events are what those doors would say:
allowed decisions of members whose plan covers the site, denied ones (unknown cards, members of
another site), exit-button presses and occupancy samples whose count follows the entries and
exits and never passes the site's capacity.

Each device's events carry seqs 1..N in one epoch. ``mosquitto_pub -l`` publishes every line on
one topic, and a topic names one kind, so a device's stream is cut into ``LANES`` lanes of equal
length (a kind each, decisions on two); every block of ``len(LANES)`` seqs gives each lane one
event, in an order shuffled per block. Lanes of equal length published side by side keep a
device's seqs roughly in order, so the hub's progress mark moves along as the stream arrives.
Roughly: on two busy cores one lane ran up to 5,700 seqs ahead of its device's slowest lane
(12,500 seqs a device), more than a door's window of 1,000 unacknowledged events, far inside
what ingest must accept from a door's backlog.

Times: a device's events are ``SPACING`` apart and end now, so the roll-ups see several local
days and hours, as after a backlog. (So ``received_at - at`` is the stream's age, not a latency:
the benchmark reports the drain after the last publisher instead.)
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hafen.cards import card_hash
from hafen.protocol import EventKind, event_topic

#: The sites of the benchmark network and what each holds (people at once).
SITES = {"leipzig-ost": 40, "borna": 25, "grimma": 30, "wurzen": 15}
DOORS = ("door-1", "door-2")
#: The kind each publisher lane of a device carries: half the events are door decisions.
LANES = (
    EventKind.ACCESS_DECISION,
    EventKind.ACCESS_DECISION,
    EventKind.EXIT_REQUEST,
    EventKind.OCCUPANCY,
)
MEMBERS = 600
COMPANIES = 20
#: Seconds between a device's events: a stream of 100,000 events spans about two days.
SPACING = 15.0
#: The share of door decisions that are refusals.
DENIED = 0.15


@dataclass
class Lane:
    """One publisher's lines: a device's events of one kind, in seq order."""

    site: str
    device: str
    kind: EventKind
    lines: list[str] = field(default_factory=list)

    @property
    def topic(self) -> str:
        return event_topic(self.site, self.device, self.kind)


@dataclass
class Firehose:
    """The registry and the lanes of one benchmark stream; counts for checking the store."""

    registry: dict[str, list[dict]]
    lanes: list[Lane]
    per_device: int
    allowed: int = 0

    @property
    def devices(self) -> list[tuple[str, str]]:
        return [(site, door) for site in SITES for door in DOORS]

    @property
    def total(self) -> int:
        return self.per_device * len(self.devices)

    def write(self, directory: Path) -> list[tuple[str, Path]]:
        """Write the registry and one file per lane; returns (topic, file) per lane."""
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "registry.json").write_text(json.dumps(self.registry))
        files = []
        for i, lane in enumerate(self.lanes):
            path = directory / f"lane-{i:03d}.jsonl"
            path.write_text("".join(line + "\n" for line in lane.lines))
            files.append((lane.topic, path))
        return files


def _plan_of(index: int) -> str:
    """A third of the members roam the network (flex); the rest hold their home site's plan."""
    sites = list(SITES)
    return "flex" if index % 3 == 0 else f"local-{sites[index % len(sites)]}"


def registry(card_key: bytes, now: datetime) -> dict[str, list[dict]]:
    """The hub's rows, by table name; times as ISO text (the driver turns them back)."""
    sites = list(SITES)
    start = (now - timedelta(days=90)).isoformat()
    members = [f"m{i:05d}" for i in range(MEMBERS)]
    return {
        "sites": [
            {"id": s, "name": s.title(), "timezone": "Europe/Berlin", "capacity": capacity}
            for s, capacity in SITES.items()
        ],
        "devices": [
            {"site": s, "id": d, "kind": "door", "created_at": start} for s in sites for d in DOORS
        ],
        "plans": [{"id": "flex", "sites": None, "windows": None}]
        + [{"id": f"local-{s}", "sites": [s], "windows": None} for s in sites],
        "companies": [{"id": f"co-{i:02d}", "name": f"Company {i}"} for i in range(COMPANIES)],
        "members": [
            {
                "id": m,
                "blocked": False,
                "name": f"Member {i}",
                "company_id": f"co-{i % COMPANIES:02d}" if i % 4 == 0 else None,
                "created_at": start,
            }
            for i, m in enumerate(members)
        ],
        "grants": [
            {"member_id": m, "plan_id": _plan_of(i), "valid_from": start, "source": "plan"}
            for i, m in enumerate(members)
        ],
        "cards": [
            {"hash": member_card(card_key, i), "member_id": m, "revoked": False}
            for i, m in enumerate(members)
        ],
    }


def member_card(card_key: bytes, index: int) -> str:
    return card_hash(card_key, bytes([4]) + index.to_bytes(6, "big"))


class _Door:
    """One device's story, told in seq order: who comes in, who leaves, how many are there."""

    def __init__(self, site: str, card_key: bytes, rng: random.Random) -> None:
        self.site, self.rng = site, rng
        self.capacity = SITES[site]
        self.inside = 0
        cards = {i: member_card(card_key, i) for i in range(MEMBERS)}
        #: (member, plan, card) of those whose plan covers this site, and of those it does not.
        everyone = [(i, (f"m{i:05d}", _plan_of(i), card)) for i, card in cards.items()]
        self.welcome = [who for i, who in everyone if self._covers(i)]
        self.elsewhere = [who for i, who in everyone if not self._covers(i)]
        assert self.welcome and self.elsewhere

    def _covers(self, index: int) -> bool:
        plan = _plan_of(index)
        return plan == "flex" or plan == f"local-{self.site}"

    def decision(self) -> dict:
        if self.rng.random() < DENIED:
            if self.rng.random() < 0.5:
                return {"card": uuid.uuid4().hex, "allowed": False, "reason": "unknown_card"}
            member, plan, card = self.rng.choice(self.elsewhere)
            return {
                "card": card,
                "allowed": False,
                "reason": "wrong_site",
                "member": member,
                "plan": plan,
            }
        member, plan, card = self.rng.choice(self.welcome)
        self.inside = min(self.capacity, self.inside + 1)
        return {"card": card, "allowed": True, "member": member, "plan": plan}

    def exit(self) -> dict:
        self.inside = max(0, self.inside - 1)
        return {"source": "button"}

    def sample(self, minute: bool) -> dict:
        return {
            "count": self.inside,
            "capacity": self.capacity,
            "confidence": round(self.rng.uniform(0.7, 1.0), 2),
            "uncertain": 0,
            "present": self.inside > 0,
            "rooms": {},
            "co2": {},
            "cause": "minute" if minute else "change",
        }


def build(events: int, card_key: bytes, seed: int = 13) -> Firehose:
    """About ``events`` events (rounded to whole blocks on every device), ending now."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    devices = [(site, door) for site in SITES for door in DOORS]
    blocks = max(1, round(events / len(devices) / len(LANES)))
    per_device = blocks * len(LANES)
    hose = Firehose(registry(card_key, now), [], per_device)
    for site, door in devices:
        story = _Door(site, card_key, rng)
        lanes = [Lane(site, door, kind) for kind in LANES]
        hose.lanes += lanes
        epoch = rng.getrandbits(64).to_bytes(8, "big").hex()
        start = now - timedelta(seconds=SPACING * per_device)
        for block in range(blocks):
            order = list(range(len(LANES)))
            rng.shuffle(order)
            for offset, lane_index in enumerate(order):
                seq = block * len(LANES) + offset + 1
                lane = lanes[lane_index]
                at = start + timedelta(seconds=SPACING * seq)
                if lane.kind == EventKind.ACCESS_DECISION:
                    data = story.decision()
                    hose.allowed += data["allowed"]
                elif lane.kind == EventKind.EXIT_REQUEST:
                    data = story.exit()
                else:
                    data = story.sample(minute=block % 2 == 0)
                lane.lines.append(_wire(epoch, seq, at, data))
    return hose


def _wire(epoch: str, seq: int, at: datetime, data: dict) -> str:
    """As edge.agent.store.OutboxEvent.wire sends it: compact JSON, times in UTC with Z."""
    stamp = at.isoformat(timespec="microseconds").replace("+00:00", "Z")
    body = json.dumps(data, separators=(",", ":"))
    return (
        f'{{"schema":1,"event_id":"{uuid.uuid4().hex}","epoch":"{epoch}","seq":{seq},'
        f'"at":"{stamp}","data":{body}}}'
    )
