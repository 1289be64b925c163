"""The hub's SQL store: SQLAlchemy tables, shared by the ingest workers and the hub's services.

SQLite (a file) is the embedded default; PostgreSQL by URL for production. Alembic migrations
(hub/migrations) build and evolve the schema: ``connect`` brings a store up to date.
"""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, overload

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    create_engine,
    event,
)
from sqlalchemy.engine.interfaces import DBAPIConnection

# The booking system's own tables (rooms, pools, waiting list, feeds, allowances, mail).
from hub.booking_tables import (
    allowances as allowances,
    booking_pools as booking_pools,
    calendar_feeds as calendar_feeds,
    mail_outbox as mail_outbox,
    rooms as rooms,
    waiting_list as waiting_list,
)
from hub.ingest_tables import ingest_workers as ingest_workers
from hub.release_tables import release_rollbacks as release_rollbacks, releases as releases
from hub.rollout_tables import rollout_devices as rollout_devices, rollouts as rollouts
from hub.schema import BigId, Json, metadata as metadata

# Occupancy samples and the usage roll-ups have a module of their own (the store outgrew one);
# the store's users reach them here, beside all the other tables.
from hub.usage_tables import (
    member_months as member_months,
    occupancy_hours as occupancy_hours,
    occupancy_months as occupancy_months,
    occupancy_now as occupancy_now,
    occupancy_samples as occupancy_samples,
    site_days as site_days,
    visits as visits,
)

# Who may use the hub: users, their sites, API tokens and sign-in links.
from hub.user_tables import (
    api_tokens as api_tokens,
    invitations as invitations,
    user_sites as user_sites,
    users as users,
)

if TYPE_CHECKING:  # Alembic loads only when migrating
    from alembic.config import Config

#: Every event an edge published, stored once (by event_id), at most one at each place (site,
#: device, epoch, seq): a second event claiming a place is a dead letter.
events = Table(
    "events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("event_id", String(32), nullable=False, unique=True),
    Column("site", String(64), nullable=False),
    Column("device", String(64), nullable=False),
    Column("epoch", String(16), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("kind", String(40), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("data", Json, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    #: The member the event names, copied out of ``data`` so that searches use an index.
    Column("member", String(64)),
    Index("events_place", "site", "device", "epoch", "seq", unique=True),
    Index("events_site_at", "site", "at"),
    # Searches list newest first by id: these let both databases walk an index backwards.
    Index("events_site_id", "site", "id"),
    Index("events_member_id", "member", "id"),
)

#: Messages that were refused: kept with the reason, the first bytes of the payload, its size
#: and its SHA-256, never whole (garbage must not fill the disk). An event whose envelope was
#: readable keeps its place (device, epoch, seq) so it fills its gap.
dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("event_id", String(32), unique=True),
    Column("site", String(64)),
    Column("device", String(64)),
    Column("epoch", String(16)),
    Column("seq", BigInteger),
    Column("topic", Text, nullable=False),
    Column("payload", LargeBinary, nullable=False),  # the first DEAD_LETTER_PREFIX bytes
    Column("payload_bytes", BigInteger),  # the whole payload's size
    Column("payload_sha256", String(64)),
    Column("reason", Text, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
)

#: How far each device's events are stored without a gap; told back to the device.
device_progress = Table(
    "device_progress",
    metadata,
    Column("site", String(64), primary_key=True),
    Column("device", String(64), primary_key=True),
    Column("epoch", String(16), primary_key=True),
    Column("stored_seq", BigInteger, nullable=False, default=0),
)

#: The latest state each device reported (birth or will) that carried the device's proof
#: (hafen.device_proof); states without one are refused and only counted here. A device that
#: has only had states refused has a row with ``online``, ``session`` and ``received_at`` NULL.
device_states = Table(
    "device_states",
    metadata,
    Column("site", String(64), primary_key=True),
    Column("device", String(64), primary_key=True),
    Column("online", Boolean),
    Column("session", BigInteger),
    Column("epoch", String(16)),
    #: The stores (epochs) the device has left, newest last: their states are replays now.
    Column("left_epochs", Json),
    Column("software", String(40)),
    Column("acl_version", Integer),
    Column("seen_version", Integer),
    Column("takeovers", Integer, nullable=False, default=0),
    Column("faults", Json),
    Column("uptime_seconds", Float),
    Column("reported_at", DateTime(timezone=True)),
    Column("received_at", DateTime(timezone=True)),
    #: States published for this device that the hub refused (no or a wrong proof, a session
    #: that jumps): a third party is on the broker.
    Column("refused_states", Integer, nullable=False, default=0),
    Column("refused_at", DateTime(timezone=True)),
)

#: Each access-list version published per site: a snapshot, or a delta from ``base``.
acl_versions = Table(
    "acl_versions",
    metadata,
    Column("site", String(64), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("kind", String(10), nullable=False),
    Column("base", Integer),
    Column("body", LargeBinary, nullable=False),  # zlib JSON of the snapshot or the delta
    Column("message_bytes", Integer, nullable=False),
    Column("published_at", DateTime(timezone=True), nullable=False),
)

# -- who may enter: the minimal source the access-list compiler reads (the hub issue grows it) --

sites = Table(
    "sites",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("timezone", String(64), nullable=False, default="Europe/Berlin"),
    Column("name", String(120)),
    Column("district", String(120)),
    Column("capacity", Integer),
    Column("opening_hours", Json),  # weekly windows, as in plans
    # -- where it is and what can be booked (issue 16; hub.services.site_booking) --
    Column("latitude", Float),
    Column("longitude", Float),
    Column("address", String(300)),
    #: Bookable seats; NULL: the site takes no desk bookings.
    Column("desks", Integer),
    Column("closed_days", Json),  # ISO dates on which it stays shut (holidays)
    Column("horizon_days", Integer, nullable=False, server_default="60"),
    #: How long before its start a booking can still be cancelled.
    Column("cancel_minutes", Integer, nullable=False, server_default="60"),
    #: How long after its start an unclaimed booking is kept before it is released.
    Column("grace_minutes", Integer, nullable=False, server_default="60"),
    #: Weekly windows (as opening_hours) in which its doors may be ordered to update (issue
    #: 17); NULL: any time.
    Column("update_window", Json),
)

devices = Table(
    "devices",
    metadata,
    Column("site", String(64), ForeignKey("sites.id"), primary_key=True),
    Column("id", String(64), primary_key=True),
    Column("kind", String(20), nullable=False, default="door"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    #: When it last enrolled (got its certificate and its client at the broker).
    Column("enrolled_at", DateTime(timezone=True)),
    #: When its access ended; a new enrolment gives it back.
    Column("revoked_at", DateTime(timezone=True)),
)

#: One-time enrolment tokens (hub.services.enrolment): only their SHA-256 is kept.
enrolment_tokens = Table(
    "enrolment_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("site", String(64), nullable=False),
    Column("device", String(64), nullable=False, index=True),
    Column("created_by", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True)),
)

#: Every certificate the network's CA gave a device: the revoked ones make its revocation list.
device_certificates = Table(
    "device_certificates",
    metadata,
    #: The serial number in decimal (up to 159 bits: more than any integer column holds).
    Column("serial", String(50), primary_key=True),
    Column("site", String(64), nullable=False),
    Column("device", String(64), nullable=False),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("not_after", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
    Index("ix_device_certificates_device", "site", "device"),
)

companies = Table(
    "companies",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("plan_id", String(64)),
    Column("sites", Json),  # the sites the company booked for its staff
    #: Desk days a month each of its staff may book (NULL: no limit); hub.booking_tables
    #: ``allowances`` may set another per person.
    Column("days_per_person", Integer),
)

plans = Table(
    "plans",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("sites", Json),  # null: the whole network
    Column("windows", Json),  # null: any time
    #: Desk days a month a member of the plan may book (NULL: no limit).
    Column("days_per_month", Integer),
    #: ``standing``: the plan lets its members in at its sites and hours; ``booked``: only
    #: where and when they booked (a flex plan of so many days a month).
    Column("access", String(10), nullable=False, default="standing", server_default="standing"),
)

members = Table(
    "members",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("blocked", Boolean, nullable=False, default=False),
    Column("name", String(200)),
    Column("email", String(254)),
    Column("company_id", String(64), index=True),
    Column("created_at", DateTime(timezone=True)),
    # Search by any part of these (ILIKE '%...%'): trigram GIN indexes on PostgreSQL.
    *(
        Index(
            f"members_{column}_trgm",
            column,
            postgresql_using="gin",
            postgresql_ops={column: "gin_trgm_ops"},
        )
        for column in ("id", "name", "email")
    ),
)

grants = Table(
    "grants",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("member_id", String(64), nullable=False, index=True),
    Column("plan_id", String(64)),
    Column("sites", Json),
    Column("valid_from", DateTime(timezone=True)),
    Column("valid_until", DateTime(timezone=True)),
    #: Where the grant comes from: a member's plan, a booking, or the member's company.
    Column("source", String(10), nullable=False, default="plan", server_default="plan"),
    Column("booking_id", BigInteger, index=True),
)

bookings = Table(
    "bookings",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("member_id", String(64), nullable=False, index=True),
    Column("site_id", String(64), nullable=False, index=True),
    Column("kind", String(10), nullable=False),  # desk, room, or day (an operator's guest)
    Column("starts_at", DateTime(timezone=True), nullable=False),
    Column("ends_at", DateTime(timezone=True), nullable=False),
    Column("cancelled_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    #: The site's local day it counts against (``booking_pools``).
    Column("day", Date),
    #: A desk's part of the day: day, morning or afternoon.
    Column("part", String(10)),
    Column("room_id", String(64)),
    Column("attendees", Integer),  # a room's: how many people come
    Column("booked_by", BigInteger),  # the user who made it
    #: The member's first tap at the site in its time: the check-in.
    Column("arrived_at", DateTime(timezone=True)),
    #: Released back to the pool: nobody tapped in by its start plus the site's grace time.
    Column("released_at", DateTime(timezone=True)),
    #: The company whose allowance it was made within (its admin booked for its staff, or one
    #: of its staff booked while on it); NULL: the member's own (a plan, or the staff booked
    #: it). What an employer sees, counts and takes back is this, never its staff's others.
    Column("company_id", String(64)),
    Index("bookings_site_day", "site_id", "day"),
    Index("bookings_company_day", "company_id", "day"),
)

cards = Table(
    "cards",
    metadata,
    Column("hash", String(32), primary_key=True),
    Column("member_id", String(64), nullable=False, index=True),
    Column("revoked", Boolean, nullable=False, default=False),
)


#: Hub-wide settings and secrets (the pseudonym key, the retention period).
settings = Table(
    "settings",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)


@overload
def aware(value: datetime) -> datetime: ...


@overload
def aware(value: None) -> None: ...


def aware(value: datetime | None) -> datetime | None:
    """A stored time as an aware UTC datetime (SQLite hands them back naive; the hub stores UTC)."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def default_url(state_dir: Path | None = None) -> str:
    """The embedded default: a SQLite file under the user's state directory."""
    base = state_dir or Path.home() / ".local" / "state" / "hafen"
    base.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{base / 'hub.db'}"


def connect(url: str, upgrade: bool = True) -> Engine:
    """Open the store at ``url`` and (unless told not to) migrate it to the newest schema."""
    engine = create_engine(url, future=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    if upgrade:
        migrate(engine)
    return engine


def alembic_config() -> Config:
    """The Alembic config of the hub's migrations (no alembic.ini needed)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    return cfg


def migrate(engine: Engine, revision: str = "head") -> None:
    """Upgrade the store to ``revision``, in one transaction where the database allows."""
    from alembic import command

    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


#: This process's writers of the busiest tables on SQLite, one at a time (see ``one_writer``).
_SQLITE_WRITER = threading.RLock()


def one_writer(engine: Engine) -> AbstractContextManager[object]:
    """On SQLite, hold this around a write transaction that runs under load (bookings, the
    access-list versions they send): this process's writers queue on a lock of their own
    before they ask for the database's. SQLite's busy handler makes a waiting writer sleep
    and poll (up to 100 ms a time), so under a rush some waited over a second while the lock
    was free; queued here, each starts the moment the one before commits. Other processes
    (ingest) still meet at SQLite's lock. Reentrant: a writer that holds it may call code
    that takes it. PostgreSQL needs none: its row locks queue."""
    return _SQLITE_WRITER if engine.dialect.name == "sqlite" else nullcontext()


def _sqlite_pragmas(dbapi_conn: DBAPIConnection, _record: object) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")  # an acked event must survive a power cut
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()
