"""The mail the hub has to send: written into the outbox in the transaction that causes it,
sent later by the sender of ``hafen hub serve`` (hub.mail).

A service that sends mail (an invitation, a booking's confirmation) calls :func:`queue_mail`
with its own connection, so the mail exists exactly when what it tells of was committed:
a mail server that is down delays the mail, it never fails the request or loses the mail.
Network admins see what could not be sent, and may send it again.

Each mail is bounded (recipient, subject, body, calendar attachment): the outbox is filled by
requests from people outside the network's staff (a member booking), so nothing they cause
may grow without limit.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

from pydantic import BaseModel, Field
from sqlalchemy import Connection, Engine, Row, insert, select, update

from hub import db
from hub.addresses import EMAIL_PATTERN
from hub.services.errors import NotFound

#: The longest subject kept (the column's size).
MAX_SUBJECT = 200
#: The longest plain-text body: a mail is a few paragraphs and a link.
MAX_BODY = 16_000
#: The longest calendar attachment (one booking's event is well under 2 KB).
MAX_ICS = 32_000
#: What the outbox lists at most per request.
MAX_LISTED = 500

#: One address, as the sender may put it into a header: no spaces or line breaks.
_ADDRESS = re.compile(EMAIL_PATTERN)
#: How often one mail is tried before it is given up on (and kept for an admin): with waits
#: doubling from a minute up to two hours (hub.mail), about ten hours of a server away.
MAX_ATTEMPTS = 12


class Letter(BaseModel):
    """A mail to queue: one recipient, a subject, a plain-text body, maybe an event."""

    recipient: Annotated[str, Field(max_length=254, pattern=_ADDRESS.pattern)]
    subject: Annotated[str, Field(min_length=1, max_length=MAX_SUBJECT)]
    body: Annotated[str, Field(min_length=1, max_length=MAX_BODY)]
    #: An iCalendar text (a booking's .ics), attached as ``text/calendar``.
    ics: Annotated[str, Field(max_length=MAX_ICS)] | None = None


class QueuedMail(BaseModel):
    """A mail in the outbox, as a network admin sees it: never its body (it may hold a
    one-time link)."""

    id: int
    recipient: str
    subject: str
    created_at: datetime
    attempts: int
    next_try_at: datetime | None
    sent_at: datetime | None
    last_error: str | None
    #: Tried ``MAX_ATTEMPTS`` times (hub.mail) without success: no more tries unless sent again.
    failed: bool


def mailable(address: str) -> bool:
    """Whether ``address`` can be a recipient (a member's stored address may be longer)."""
    return len(address) <= 254 and _ADDRESS.fullmatch(address) is not None


def queue_mail(conn: Connection, letter: Letter, now: datetime | None = None) -> int:
    """Put ``letter`` into the outbox within the caller's transaction; returns its id.

    A subject's line breaks become spaces (a header is one line); the rest of the letter is
    checked by :class:`Letter` when it is made."""
    now = now or datetime.now(UTC)
    subject = " ".join(letter.subject.split())
    return int(
        conn.execute(
            insert(db.mail_outbox)
            .returning(db.mail_outbox.c.id)
            .values(
                recipient=letter.recipient,
                subject=subject,
                body=letter.body,
                ics=letter.ics,
                created_at=now,
                next_try_at=now,
                attempts=0,
            )
        ).scalar_one()
    )


def list_outbox(
    engine: Engine, failed: bool = False, before_id: int | None = None, limit: int = 100
) -> list[QueuedMail]:
    """The outbox, newest first: everything, or (``failed``) only the mail the sender gave
    up on; paged by ``before_id``."""
    o = db.mail_outbox.c
    query = select(db.mail_outbox).order_by(o.id.desc()).limit(min(limit, MAX_LISTED))
    if failed:
        query = query.where(o.sent_at.is_(None), o.attempts >= MAX_ATTEMPTS)
    if before_id is not None:
        query = query.where(o.id < before_id)
    with engine.connect() as conn:
        return [_queued(row) for row in conn.execute(query)]


def send_again(engine: Engine, mail_id: int, now: datetime | None = None) -> QueuedMail:
    """Give a mail that is not sent yet a fresh set of tries, starting now (after the mail
    server was fixed, or the address corrected)."""
    o = db.mail_outbox.c
    now = now or datetime.now(UTC)
    with engine.begin() as conn:
        changed = conn.execute(
            update(db.mail_outbox)
            .where(o.id == mail_id, o.sent_at.is_(None))
            .values(attempts=0, next_try_at=now)
        ).rowcount
        if not changed:
            raise NotFound("no such unsent mail")
        row = conn.execute(select(db.mail_outbox).where(o.id == mail_id)).one()
    return _queued(row)


def _queued(row: Row) -> QueuedMail:
    sent_at = db.aware(row.sent_at)
    attempts = row.attempts
    return QueuedMail(
        id=row.id,
        recipient=row.recipient,
        subject=row.subject,
        created_at=db.aware(row.created_at),
        attempts=attempts,
        next_try_at=None if sent_at else db.aware(row.next_try_at),
        sent_at=sent_at,
        last_error=row.last_error,
        failed=sent_at is None and attempts >= MAX_ATTEMPTS,
    )
