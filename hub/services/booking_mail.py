"""The mail a member gets about a booking: its confirmation when it is made (with its
``.ics``), and what happens to it without them asking: it was released (nobody tapped in by
its start plus the site's grace time), a desk they waited for is theirs, or someone else
cancelled it (their employer took them off its staff, the site or room changed). In German
and English, as the invitations.

Queued only when the hub sends mail (``[mail]`` configured) and the member has an address
that can take it (``mail.mailable``): otherwise the member sees the same in their bookings
(``GET /me/bookings``: state ``released``; a new booking) and their waiting list.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Row, select

from hub import db
from hub.services.calendars import booking_ics_text
from hub.services.mail import Letter, mailable, queue_mail

_PART_DE = {"day": "ganzer Tag", "morning": "Vormittag", "afternoon": "Nachmittag"}


def tell_member(conn: Connection, booking: Row, released: bool) -> bool:
    """Queue the mail about ``booking`` (``released``: it was released, else: it is the
    member's from the waiting list); False if the member has no address that takes mail.
    The outbox keeps the sender's clock: the mail is due now, whatever clock the sweep that
    caused it was given."""
    found = _addressed(conn, booking)
    if found is None:
        return False
    address, name, what, until = found
    if released:
        letter = _released(address, name, what, until)
    else:
        letter = _got_desk(address, name, what, until)
    queue_mail(conn, letter)
    return True


@dataclass(frozen=True)
class Because:
    """Why someone else cancelled a member's booking, as the mail says it: a sentence in
    German and in English."""

    german: str
    english: str


def tell_cancelled(conn: Connection, booking: Row, because: Because) -> bool:
    """Queue the mail that ``booking`` was cancelled, and why; False if the member has no
    address that takes mail."""
    found = _addressed(conn, booking)
    if found is None:
        return False
    address, name, what, _until = found
    body = (
        f"Hallo {name},\n\n"
        f"Ihre Buchung {booking.id} – {what.thing(True)} in {what.site}, {what.times()} – ist"
        f" storniert: {because.german}\n"
        "Ihre Karte öffnet die Tür dort für diese Buchung nicht mehr.\n\n"
        "---\n\n"
        f"Hello {name},\n\n"
        f"your booking {booking.id} – {what.thing(False)} at {what.site}, {what.times()} – is"
        f" cancelled: {because.english}\n"
        "Your card no longer opens the door there for this booking.\n"
    )
    subject = f"Buchung storniert / Booking cancelled: {what.site}, {what.starts:%d.%m.%Y}"
    queue_mail(conn, Letter(recipient=address, subject=subject, body=body))
    return True


def confirm(conn: Connection, booking: Row, host: str) -> bool:
    """Queue the confirmation of a booking just made, with its ``.ics`` to add to a calendar
    (``host``: the hub's, for the event's UID); False if the member has no address that takes
    mail."""
    found = _addressed(conn, booking)
    if found is None:
        return False
    address, name, what, until = found
    ics = booking_ics_text(conn, booking.member_id, booking.id, host)
    body = (
        f"Hallo {name},\n\n"
        f"Ihre Buchung {booking.id} steht: {what.thing(True)} in {what.site}, {what.times()}.\n"
        f"Ihre Karte öffnet die Tür dort in dieser Zeit. Tippen Sie sie bis {until} Uhr an"
        " der Tür; das ist Ihr Einchecken. Sonst wird der Platz für andere freigegeben.\n"
        "Den Termin für Ihren Kalender finden Sie im Anhang.\n\n"
        "---\n\n"
        f"Hello {name},\n\n"
        f"your booking {booking.id} is made: {what.thing(False)} at {what.site},"
        f" {what.times()}.\n"
        f"Your card opens the door there in that time. Tap it at the door by {until}: that is"
        " your check-in. Otherwise the place is released for others.\n"
        "The attached file adds it to your calendar.\n"
    )
    subject = f"Gebucht / Booked: {what.site}, {what.starts:%d.%m.%Y}"
    queue_mail(conn, Letter(recipient=address, subject=subject, body=body, ics=ics))
    return True


def _addressed(conn: Connection, booking: Row) -> tuple[str, str, _What, str] | None:
    """Whom to write about ``booking`` and what to say of it: their address and name, the
    booking as a mail names it, and the time by which a tap keeps it; None without an
    address that takes mail."""
    m, s = db.members.c, db.sites.c
    member = conn.execute(select(m.name, m.email).where(m.id == booking.member_id)).one_or_none()
    site = conn.execute(
        select(s.name, s.timezone, s.grace_minutes).where(s.id == booking.site_id)
    ).one_or_none()
    if member is None or site is None or not member.email or not mailable(member.email):
        return None
    what = _What(booking, site.name or booking.site_id, ZoneInfo(site.timezone))
    until = f"{check_in_by(booking, site.grace_minutes).astimezone(what.zone):%H:%M}"
    name = " ".join((member.name or booking.member_id).split())[:200]
    return member.email, name, what, until


def check_in_by(booking: Row, grace_minutes: int) -> datetime:
    """When a tap at the site must have happened to keep ``booking``: its start plus the
    site's grace time, or, for a booking made after its start (a desk from the waiting list,
    today's desk booked at noon), from when it was made."""
    start = max(db.aware(booking.starts_at), db.aware(booking.created_at))
    return start + timedelta(minutes=grace_minutes)


class _What:
    """A booking as a mail names it: where, which day, which part, from when to when."""

    def __init__(self, booking: Row, site: str, zone: ZoneInfo) -> None:
        self.booking, self.site, self.zone = booking, " ".join(site.split())[:120], zone
        self.starts = db.aware(booking.starts_at).astimezone(zone)
        self.ends = db.aware(booking.ends_at).astimezone(zone)

    def times(self) -> str:
        """Its day and times on the site's clock (a day's end as 24:00)."""
        ends = "24:00" if self.ends.date() > self.starts.date() else f"{self.ends:%H:%M}"
        return f"{self.starts:%d.%m.%Y %H:%M}–{ends}"

    def thing(self, german: bool) -> str:
        b = self.booking
        if b.kind == "room":
            return f"Raum {b.room_id}" if german else f"room {b.room_id}"
        part = b.part or "day"
        if german:
            return f"Arbeitsplatz ({_PART_DE.get(part, part)})"
        return f"desk ({part})"


def _released(address: str, name: str, what: _What, until: str) -> Letter:
    number = what.booking.id
    body = (
        f"Hallo {name},\n\n"
        f"Ihre Buchung {number} – {what.thing(True)} in {what.site}, {what.times()} – wurde"
        " freigegeben: bis zum Ende der Kulanzzeit hat Ihre Karte die Tür dort nicht"
        " geöffnet.\n"
        f"Ein Tippen Ihrer Karte an der Tür von {what.site} bis {until} Uhr hätte die Buchung"
        " gehalten; ein Einchecken darüber hinaus braucht es nicht.\n"
        "Der Platz ist wieder frei für andere; ist er noch frei, können Sie ihn neu buchen.\n\n"
        "---\n\n"
        f"Hello {name},\n\n"
        f"your booking {number} – {what.thing(False)} at {what.site}, {what.times()} – was"
        " released: your card did not open the door there by the end of the grace time.\n"
        f"A tap of your card at the door of {what.site} by {until} would have kept it; no"
        " other check-in is needed.\n"
        "The place is free for others again; while it is, you can book it again.\n"
    )
    return Letter(
        recipient=address,
        subject=f"Buchung freigegeben / Booking released: {what.site}, {what.starts:%d.%m.%Y}",
        body=body,
    )


def _got_desk(address: str, name: str, what: _What, until: str) -> Letter:
    number = what.booking.id
    body = (
        f"Hallo {name},\n\n"
        f"ein Platz ist frei geworden, auf den Sie gewartet haben: Sie haben einen"
        f" {what.thing(True)} in {what.site}, {what.times()} (Buchung {number}).\n"
        "Ihre Karte öffnet die Tür dort in dieser Zeit. Tippen Sie sie bis"
        f" {until} Uhr an der Tür, sonst wird der Platz wieder freigegeben. Brauchen Sie ihn"
        " nicht, stornieren Sie die Buchung bitte, damit ihn jemand anderes bekommt.\n\n"
        "---\n\n"
        f"Hello {name},\n\n"
        f"a place you were waiting for has freed: you got a {what.thing(False)} at"
        f" {what.site}, {what.times()} (booking {number}).\n"
        f"Your card opens the door there in that time. Tap it at the door by {until}, or the"
        " place is released again. If you do not need it, please cancel"
        " the booking so that someone else gets it.\n"
    )
    return Letter(
        recipient=address,
        subject=f"Sie haben einen Platz / You got a desk: {what.site}, {what.starts:%d.%m.%Y}",
        body=body,
    )
