"""The store's tables of the network's one booking system (issue 16): rooms, the pools that
bookings are counted against, the waiting list, calendar feeds, staff allowances, and the mail
the hub still has to send. Reached through hub.db like every other table.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Date, DateTime, Index, Integer, String, Table, Text

from hub.schema import BigId, Json, metadata

#: Rooms of a site, bookable by the hour: one booking holds the whole room, for at most
#: ``seats`` people.
rooms = Table(
    "rooms",
    metadata,
    Column("site_id", String(64), primary_key=True),
    Column("id", String(64), primary_key=True),
    Column("name", String(120), nullable=False),
    Column("seats", Integer, nullable=False),
)

#: One row per site, local day and resource (``desks``, or ``room:<id>``): the row a booking
#: locks (writes first) in the transaction that counts and inserts, so that two requests for
#: the last desk cannot both see it free (the pattern of pretix's quotas), on PostgreSQL by the
#: row lock, on SQLite by the write lock the first write takes.
booking_pools = Table(
    "booking_pools",
    metadata,
    Column("site_id", String(64), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("resource", String(80), primary_key=True),
    #: Bumped by every booking, cancellation and release of the pool: the write that locks.
    Column("changes", BigInteger, nullable=False, default=0),
)

#: Members waiting for a desk at a site on a day, first come first served: when a desk frees
#: (a cancellation or a release), the first still waiting whose part fits gets it
#: (hub.services.waiting_list).
waiting_list = Table(
    "waiting_list",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("site_id", String(64), nullable=False),
    Column("day", Date, nullable=False),
    Column("member_id", String(64), nullable=False, index=True),
    #: day, morning or afternoon: the part of the day they want.
    Column("part", String(10), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", BigInteger),  # the user who put them on it
    #: The company whose admin put them on it (NULL: the member, or the staff): the entries
    #: an employer may see and end.
    Column("company_id", String(64)),
    #: The booking they got when a desk freed; NULL while waiting.
    Column("booking_id", BigInteger),
    #: When they stopped waiting (got a desk, left the list, the day passed).
    Column("ended_at", DateTime(timezone=True)),
    #: How it ended: booked, left, expired (the part was over) or refused (see ``reason``).
    Column("outcome", String(10)),
    #: Why a desk that freed was not theirs (the refusal's words), for the member to read.
    Column("reason", String(500)),
    Index("waiting_list_site_day", "site_id", "day", "id"),
)

#: Each member's private calendar feed: the URL holds a token whose SHA-256 is kept here;
#: a new one revokes the old.
calendar_feeds = Table(
    "calendar_feeds",
    metadata,
    Column("member_id", String(64), primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

#: What an employer allows one of its staff, over the company's defaults: desk days a month
#: (NULL: the company's ``days_per_person``) and sites (NULL: the company's sites).
allowances = Table(
    "allowances",
    metadata,
    Column("member_id", String(64), primary_key=True),
    Column("days_per_month", Integer),
    Column("sites", Json),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

#: Mail the hub has to send (invitations, confirmations, releases, a desk from the waiting
#: list), written in the transaction that caused it and sent by ``hafen hub serve``: a mail
#: server that is down delays mail, it never loses it or fails a booking.
mail_outbox = Table(
    "mail_outbox",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("recipient", String(254), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("body", Text, nullable=False),
    #: An iCalendar attachment (a booking's .ics), if any.
    Column("ics", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("next_try_at", DateTime(timezone=True), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("sent_at", DateTime(timezone=True)),
    Column("last_error", Text),
    Index("mail_outbox_due", "sent_at", "next_try_at"),
)
