"""The simulated network of ``hafen demo``: its sites, members and companies, how they are put
into the hub's store, and one site's door as a process of its own.

Every member has a simulated card (``simulated_card(n)`` for member number ``n``) that only their
home site's simulated people tap, so each site has its own members, as in a real network. The
first member of each site holds a network-wide grant and also visits the next site; staff of a
company may enter at every site their company booked (the "commuter harbours" of the reports).

Run as ``python -m sim.demo_network SPEC.json``, this module is one simulated site: a door
agent on mock pins and nfcpy's UDP reader, linked to the demo's broker, with its members
coming and going. The demo starts one such process per site.
"""

from __future__ import annotations

import json
import logging
import math
import os
import secrets
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert

from hafen.cards import card_hash
from hub import db

log = logging.getLogger(__name__)

TIMEZONE = "Europe/Berlin"
DEVICE = "front-door"
#: The one plan: members' grants narrow it to their home site; network members keep it whole.
PLAN = "flex"
ADMIN = "admin"
_ASCII = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss"})
OPERATOR = "operator"
EMPLOYER = "employer"

SITE_NAMES = [
    "Hafen Nord",
    "Alte Molkerei",
    "Bahnhof Süd",
    "Dorfbüro Linden",
    "Scheune am See",
    "Kornspeicher",
    "Schulhaus Wiesengrund",
    "Landwerk Ost",
]
DISTRICTS = ["Landkreis Leipzig", "Nordsachsen", "Mittelsachsen"]
#: Where the demo's sites are: towns around Leipzig (the first eight; later ones in a ring).
PLACES = [
    ("Markt 1, 04552 Borna", 51.1236, 12.4967),
    ("Bahnhofstraße 2, 04808 Wurzen", 51.3700, 12.7390),
    ("Am Anger 3, 04509 Delitzsch", 51.5256, 12.3424),
    ("Lindenplatz 4, 04668 Grimma", 51.2386, 12.7253),
    ("Seestraße 5, 04886 Eilenburg", 51.4597, 12.6330),
    ("Speicherweg 6, 04720 Döbeln", 51.1222, 13.1114),
    ("Schulweg 7, 04654 Frohburg", 51.0553, 12.5546),
    ("Oststraße 8, 04860 Torgau", 51.5603, 13.0044),
]
COMPANY_NAMES = [
    "Stadtwerke Muldental",
    "Agentur Feldweg",
    "Ingenieurbüro Kranich",
    "Kanzlei Auenwald",
]
FIRST_NAMES = [
    "Anna", "Ben", "Carla", "David", "Elif", "Finn", "Greta", "Hannes", "Ida", "Jonas", "Katja",
    "Lukas", "Mira", "Niklas", "Oksana", "Paul", "Rosa", "Samir", "Tilda", "Uwe",
]  # fmt: skip
LAST_NAMES = [
    "Albrecht", "Becker", "Dietrich", "Engel", "Franke", "Günther", "Hoffmann", "Jung", "Krause",
    "Lehmann", "Meyer", "Neumann", "Otto", "Pohl", "Richter", "Schulz", "Vogel", "Winkler",
    "Yilmaz", "Zimmermann",
]  # fmt: skip


@dataclass(frozen=True)
class DemoMember:
    """A simulated member: ``number`` picks their card. ``sites``: where their own grant lets
    them in (None: every site); company staff have none, their company's booking lets them in."""

    number: int
    id: str
    name: str
    email: str
    company: str | None = None
    sites: list[str] | None = None


@dataclass(frozen=True)
class DemoSite:
    id: str
    name: str
    district: str
    capacity: int
    #: The members (by number) whose cards this site's simulated people tap: its own members
    #: and a visitor from the site before.
    cards: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class DemoCompany:
    id: str
    name: str
    sites: list[str]


@dataclass(frozen=True)
class Network:
    sites: list[DemoSite]
    members: list[DemoMember]
    companies: list[DemoCompany]


@dataclass(frozen=True)
class Logins:
    """The demo's hub users and their passwords (random for each run)."""

    admin: tuple[str, str]
    operator: tuple[str, str]
    operator_site: str
    #: A member who books (the network-wide member of the first site), and the company
    #: admin of the first company: (user name, password, whom they are or look after).
    member: tuple[str, str, str] | None = None
    employer: tuple[str, str, str] | None = None


def plan_network(site_count: int, people: int) -> Network:
    """``site_count`` sites of ``people`` members each; companies book sites in pairs."""
    site_ids = [f"site-{k}" for k in range(1, site_count + 1)]
    companies = [
        DemoCompany(f"company-{j + 1}", _company_name(j), site_ids[2 * j : 2 * j + 2])
        for j in range((site_count + 1) // 2)
    ]
    members = [
        _member(k * people + slot, site_ids[k], slot, people, companies[k // 2].id)
        for k in range(site_count)
        for slot in range(people)
    ]
    sites = []
    for k, site in enumerate(site_ids):
        own = list(range(k * people, (k + 1) * people))
        # The network member of the site before this one comes by too.
        guest = [((k - 1) % site_count) * people] if site_count > 1 and people else []
        sites.append(
            DemoSite(
                id=site,
                name=SITE_NAMES[k] if k < len(SITE_NAMES) else f"Hafen {k + 1}",
                district=DISTRICTS[k % len(DISTRICTS)],
                capacity=max(8, people + people // 2),
                cards=own + guest,
            )
        )
    return Network(sites, members, companies)


def _company_name(j: int) -> str:
    return COMPANY_NAMES[j] if j < len(COMPANY_NAMES) else f"Firma {j + 1}"


def _member(number: int, site: str, slot: int, people: int, company: str) -> DemoMember:
    """Slot 0 is allowed everywhere, about a quarter are a company's staff, the rest local."""
    first = FIRST_NAMES[number % len(FIRST_NAMES)]
    last = LAST_NAMES[(number * 7 + number // len(FIRST_NAMES)) % len(LAST_NAMES)]
    email = f"{first}.{last}.{number}@example.org".lower().translate(_ASCII)
    member = DemoMember(number, f"sim-{number:03d}", f"{first} {last}", email)
    if slot == 0:
        return member  # sites=None: everywhere
    if slot <= (people + 3) // 4:
        return replace(member, company=company, sites=[])
    return replace(member, sites=[site])


def _place(k: int) -> tuple[str, float, float]:
    """The k-th site's address and coordinates (past the named towns: a ring around Leipzig)."""
    if k < len(PLACES):
        return PLACES[k]
    angle = 2 * math.pi * k / 13
    return (f"Dorfstraße {k + 1}", 51.34 + 0.3 * math.sin(angle), 12.37 + 0.45 * math.cos(angle))


def seed_hub(engine: Engine, network: Network, card_key: bytes) -> None:
    """Put the network into the hub's store in one transaction: sites (with their place,
    desks and a meeting room) and their doors, the plan, companies, members with their
    grants and (hashed) cards."""
    from sim.space import simulated_card

    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(insert(db.plans).values(id=PLAN, sites=None, windows=None))
        for s in network.sites:
            address, latitude, longitude = _place(network.sites.index(s))
            conn.execute(
                insert(db.sites).values(
                    id=s.id,
                    name=s.name,
                    district=s.district,
                    timezone=TIMEZONE,
                    capacity=s.capacity,
                    address=address,
                    latitude=latitude,
                    longitude=longitude,
                    desks=s.capacity - 2,  # two places are the meeting room's
                )
            )
            conn.execute(
                insert(db.rooms).values(site_id=s.id, id="kajuete", name="Kajüte", seats=6)
            )
            conn.execute(
                insert(db.devices).values(site=s.id, id=DEVICE, kind="door", created_at=now)
            )
        for c in network.companies:
            conn.execute(
                insert(db.companies).values(
                    id=c.id, name=c.name, plan_id=PLAN, sites=c.sites, days_per_person=8
                )
            )
        for m in network.members:
            conn.execute(
                insert(db.members).values(
                    id=m.id,
                    name=m.name,
                    email=m.email,
                    company_id=m.company,
                    blocked=False,
                    created_at=now,
                )
            )
            if m.company is None:  # company staff enter where their company booked
                conn.execute(
                    insert(db.grants).values(
                        member_id=m.id, plan_id=PLAN, sites=m.sites, source="plan"
                    )
                )
            digest = card_hash(card_key, simulated_card(m.number))
            conn.execute(insert(db.cards).values(hash=digest, member_id=m.id, revoked=False))


def create_logins(engine: Engine, network: Network) -> Logins:
    """A network admin, an operator of the first site, a member who books and the first
    company's admin, each with a random password."""
    from hub.auth import Role, create_user

    operator_site = network.sites[0].id
    admin, operator = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
    create_user(engine, ADMIN, admin, Role.NETWORK_ADMIN)
    create_user(engine, OPERATOR, operator, Role.SITE_OPERATOR, [operator_site])
    logins = Logins((ADMIN, admin), (OPERATOR, operator), operator_site)
    member = next((m for m in network.members if m.sites is None), None)
    if member is not None:
        password = secrets.token_urlsafe(12)
        create_user(engine, member.email, password, Role.MEMBER, member_id=member.id)
        logins = replace(logins, member=(member.email, password, member.id))
    if network.companies:
        company, password = network.companies[0], secrets.token_urlsafe(12)
        create_user(engine, EMPLOYER, password, Role.COMPANY_ADMIN, company_id=company.id)
        logins = replace(logins, employer=(EMPLOYER, password, company.id))
    return logins


def edge_config(
    site: DemoSite, site_dir: Path, card_key: bytes, broker_port: int, public_key: str
) -> dict[str, Any]:
    """The door config of ``site``: the simulated door's defaults, on its own UDP reader and
    store, linked to the demo's broker and trusting the hub's key."""
    from sim.edge_site import simulated_config
    from sim.space import occupancy_section

    raw = simulated_config(None, site_dir).model_dump(mode="json")
    raw.update(
        site={"id": site.id, "timezone": TIMEZONE},
        device={"id": DEVICE},
        store={"path": str(site_dir / "edge.db"), "synchronous": "normal"},
        cards={"hash_key": card_key.hex()},
        occupancy=occupancy_section(site_dir, site.capacity),
        mqtt={"host": "127.0.0.1", "port": broker_port, "keepalive": 10},
        hub={"public_keys": [public_key]},
    )
    raw["reader"]["path"] = f"udp:127.0.0.1:{_free_udp_port()}"
    return raw


def _free_udp_port() -> int:
    """A UDP port for a site's simulated reader (nfcpy's UDP driver and the card emulator)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def write_site_spec(site: DemoSite, site_dir: Path, config: dict[str, Any], speed: float) -> Path:
    """The file a site process starts from (it holds the card key: readable by us only)."""
    spec = {
        "config": config,
        "state_dir": str(site_dir),
        "cards": site.cards,
        "speed": speed,
        "parent": os.getpid(),  # the demo: when it is gone, the site stops
    }
    path = site_dir / "site.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(spec, f)
    return path


# -- one site, in a process of its own ------------------------------------------------------


def run_site(spec_path: Path) -> None:
    """Run a simulated site until SIGTERM or SIGINT, or until the demo that started it is gone."""
    from edge.agent.config import EdgeConfig
    from hafen.config import validate_config
    from sim.edge_site import run_simulated

    logging.basicConfig(
        level=os.environ.get("HAFEN_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    cfg = validate_config(spec["config"], EdgeConfig, source=str(spec_path))
    _stop_with_parent(spec["parent"])
    run_simulated(cfg, Path(spec["state_dir"]), speed=spec["speed"], cards=spec["cards"])


def _stop_with_parent(parent: int) -> None:
    """Stop (as on SIGTERM) when the demo process dies without stopping us (kill -9), even
    if it died while this process was still starting."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


if __name__ == "__main__":
    run_site(Path(sys.argv[1]))
