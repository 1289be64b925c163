"""Sending the outbox: the thread of ``hafen hub serve`` that hands queued mail to the
configured SMTP server (``[mail]``), and tries again when it cannot.

Requests never wait for a mail server: services only write the outbox
(hub.services.mail), in their own transaction; this sender picks up what is due. It is one of
the hub's jobs: it knows the store and the settings, nothing of the services or of HTTP. A mail
that the server refuses for now (it is down, it answers 4xx) is tried again later, each wait
twice the one before (up to ``max_delay``), until ``MAX_ATTEMPTS``; one that it refuses for
good (5xx: no such mailbox) is not tried again. Either way it stays in the outbox with its
last error, for a network admin (``GET /mail/outbox?failed=true``).

Several hub processes may send from one store: each claims a mail (counting the attempt)
with a conditional update before it sends, so no two send the same one. A process that dies
while sending leaves its claim to run out: the mail is sent again after ``CLAIM`` (at least
once, never lost). A sent mail keeps its recipient and subject for a while, not its body (it
may hold a one-time link).
"""

from __future__ import annotations

import logging
import smtplib
import socket
import ssl
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from sqlalchemy import Engine, Row, delete, select, update

from hub import db
from hub.services.mail import MAX_ATTEMPTS
from hub.settings_sections import MailSettings

log = logging.getLogger(__name__)

#: How long one SMTP conversation may stall before the attempt counts as failed.
SMTP_TIMEOUT = 30.0
#: How long a stopping hub waits for the round under way (a server may stall it longer).
STOP_WAIT = 3.0
#: How long a claimed mail is left to its sender before another may try it.
CLAIM = timedelta(minutes=5)
#: How long sent mail (and mail given up on) stays listed before it is deleted.
KEEP = timedelta(days=30)
#: Mail sent per round, over one connection.
BATCH = 20


@dataclass(frozen=True)
class Mailer:
    """What the sender needs: the ``[mail]`` settings, the password read from its file, and
    how often to look and how long to wait after a failure (shorter in tests)."""

    settings: MailSettings
    password: str | None = None
    poll_seconds: float = 2.0
    first_retry: timedelta = timedelta(minutes=1)
    max_delay: timedelta = timedelta(hours=2)

    @classmethod
    def from_settings(cls, settings: MailSettings) -> Mailer:
        """The mailer of ``settings``, its password read now (a ConfigError names the key)."""
        return cls(settings, settings.password())

    def retry_delay(self, attempts: int) -> timedelta:
        """The wait after the ``attempts``-th failed try: 1, 2, 4 ... times ``first_retry``."""
        return min(self.first_retry * 2 ** max(attempts - 1, 0), self.max_delay)


class PermanentFailure(Exception):
    """The server refused a mail for good (5xx), or it cannot be written as a message."""


class MailSender:
    """Sends due mail from the outbox in a thread of its own (see the module)."""

    def __init__(self, engine: Engine, mailer: Mailer) -> None:
        self.engine, self.mailer = engine, mailer
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> MailSender:
        self._thread = threading.Thread(target=self._run, name="mail-sender", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop after the round under way, waiting for it a few seconds at most: a mail still
        being sent then stays claimed, and is sent again after ``CLAIM`` by the next start."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=STOP_WAIT)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                while self.send_due() == BATCH and not self._stop.is_set():
                    pass  # a full round: there may be more due right away
                self.forget_old()
            except Exception:  # the store is away, a bug: log it, the next round tries again
                log.exception("sending mail failed")
            self._stop.wait(self.mailer.poll_seconds)

    def send_due(self, now: datetime | None = None) -> int:
        """One round: claim up to ``BATCH`` due mails and send them over one connection;
        returns how many were claimed."""
        now = now or datetime.now(UTC)
        claimed = self._claim(now)
        if not claimed:
            return 0
        try:
            smtp = self._connect()
        except (OSError, smtplib.SMTPException) as exc:  # the server is away or refuses us
            for row in claimed:
                self._failed(row, _reason(exc), False, now)
            return len(claimed)
        try:
            for row in claimed:
                try:
                    smtp.send_message(self._message(row))
                except PermanentFailure as exc:
                    self._failed(row, str(exc), True, now)
                except smtplib.SMTPResponseException as exc:
                    self._failed(row, _reason(exc), exc.smtp_code >= 500, now)
                except smtplib.SMTPRecipientsRefused as exc:
                    codes = [code for code, _ in exc.recipients.values()]
                    self._failed(row, _reason(exc), min(codes, default=0) >= 500, now)
                except (OSError, smtplib.SMTPException) as exc:
                    self._failed(row, _reason(exc), False, now)
                else:
                    self._sent(row)
        finally:
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                smtp.close()
        return len(claimed)

    def forget_old(self, now: datetime | None = None) -> int:
        """Delete mail sent, or given up on, more than ``KEEP`` ago."""
        o = db.mail_outbox.c
        cutoff = (now or datetime.now(UTC)) - KEEP
        with self.engine.begin() as conn:
            sent = conn.execute(delete(db.mail_outbox).where(o.sent_at < cutoff)).rowcount
            given_up = conn.execute(
                delete(db.mail_outbox).where(
                    o.sent_at.is_(None), o.attempts >= MAX_ATTEMPTS, o.created_at < cutoff
                )
            ).rowcount
        return sent + given_up

    def _claim(self, now: datetime) -> list[Row]:
        """Due mails this process now holds: each claim counts an attempt and moves the next
        try past ``CLAIM``, by an update that only one process can make."""
        o = db.mail_outbox.c
        due = (o.sent_at.is_(None), o.attempts < MAX_ATTEMPTS, o.next_try_at <= now)
        claimed = []
        with self.engine.begin() as conn:
            rows = conn.execute(
                select(db.mail_outbox).where(*due).order_by(o.next_try_at, o.id).limit(BATCH)
            ).all()
            for row in rows:
                won = conn.execute(
                    update(db.mail_outbox)
                    .where(o.id == row.id, o.attempts == row.attempts, *due)
                    .values(attempts=row.attempts + 1, next_try_at=now + CLAIM)
                ).rowcount
                if won:
                    claimed.append(row)
        return claimed

    def _connect(self) -> smtplib.SMTP:
        settings = self.mailer.settings
        port, host = settings.smtp_port(), settings.host
        name = socket.gethostname()  # not getfqdn(): a DNS lookup that may stall
        context = ssl.create_default_context(
            cafile=str(settings.ca_file) if settings.ca_file else None
        )
        smtp: smtplib.SMTP
        if settings.security == "tls":
            smtp = smtplib.SMTP_SSL(
                host, port, local_hostname=name, timeout=SMTP_TIMEOUT, context=context
            )
        else:
            smtp = smtplib.SMTP(host, port, local_hostname=name, timeout=SMTP_TIMEOUT)
        try:
            if settings.security == "starttls":
                smtp.starttls(context=context)  # no STARTTLS offered: an error, never plain
            if settings.username is not None:
                smtp.login(settings.username, self.mailer.password or "")
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _message(self, row: Row) -> EmailMessage:
        sender = self.mailer.settings.sender
        message = EmailMessage()
        try:
            message["From"] = sender
            message["To"] = row.recipient
            message["Subject"] = row.subject
        except ValueError as exc:  # a header that cannot be written (the outbox checks it)
            raise PermanentFailure(f"cannot be written as a mail: {exc}") from None
        message["Date"] = formatdate(usegmt=True)
        message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2])
        message["Auto-Submitted"] = "auto-generated"  # no out-of-office replies, please
        message.set_content(row.body)
        if row.ics:
            message.add_attachment(
                row.ics, subtype="calendar", filename="booking.ics", params={"method": "PUBLISH"}
            )
        return message

    def _sent(self, row: Row) -> None:
        o = db.mail_outbox.c
        with self.engine.begin() as conn:
            conn.execute(
                update(db.mail_outbox)
                .where(o.id == row.id)
                .values(sent_at=datetime.now(UTC), body="", ics=None, last_error=None)
            )

    def _failed(self, row: Row, reason: str, permanent: bool, now: datetime) -> None:
        """Count a failed try; the next waits ``retry_delay`` from the round's clock (or from
        the real one, if that is later): a round run with a clock ahead waits from it."""
        attempts = MAX_ATTEMPTS if permanent else row.attempts + 1
        delay = self.mailer.retry_delay(attempts)
        log.warning("mail %d not sent (try %d): %s", row.id, attempts, reason)
        o = db.mail_outbox.c
        with self.engine.begin() as conn:
            conn.execute(
                update(db.mail_outbox)
                .where(o.id == row.id)
                .values(
                    attempts=attempts,
                    next_try_at=max(now, datetime.now(UTC)) + delay,
                    last_error=reason[:1000],
                )
            )


def _reason(exc: BaseException) -> str:
    """An SMTP error in one line: the server's code and words, or the connection's trouble."""
    if isinstance(exc, smtplib.SMTPResponseException):
        text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else ""
        return f"{exc.smtp_code} {' '.join(text.split())}".strip()
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        refusals = exc.recipients.values()
        return "; ".join(f"{code} {words.decode(errors='replace')}" for code, words in refusals)
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
