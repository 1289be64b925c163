"""A booking made is confirmed by mail (issue 16: "booking confirmations go out by e-mail"),
through a real SMTP server, with the booking's .ics attached for the member's calendar; a
refused booking sends nothing, and a hub without mail answers the same without any."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from icalendar import Calendar

from tests.support.waiting import wait_for
from tests.test_waiting_list import borna, desk, mail_api, mails_to  # noqa: F401 (fixtures)


def test_a_booking_is_confirmed_with_its_calendar_file_and_a_refusal_sends_nothing(
    mail_api,  # noqa: F811
    borna,  # noqa: F811
):
    api, inbox = mail_api
    tomorrow = datetime.now(UTC).astimezone(ZoneInfo("Europe/Berlin")).date() + timedelta(days=1)
    made = api.post("/me/bookings", json=desk(tomorrow), headers=borna["mia"])
    assert made.status_code == 201, made.text
    booking = made.json()["id"]
    assert wait_for(lambda: mails_to(inbox, "mia@example.org", confirmations=True), 10)
    [message] = [m for m in inbox.messages if m["To"] == "mia@example.org"]
    [text] = mails_to(inbox, "mia@example.org", confirmations=True)
    assert f"Buchung {booking}" in text and f"booking {booking} is made" in text
    [attached] = [p for p in message.iter_attachments() if p.get_content_type() == "text/calendar"]
    [event] = Calendar.from_ical(attached.get_content()).walk("VEVENT")
    assert str(event["uid"]) == f"booking-{booking}@testserver"
    assert event.decoded("dtstart").astimezone(ZoneInfo("Europe/Berlin")).date() == tomorrow

    # The one desk is taken: ole's refused booking is confirmed to nobody.
    refused = api.post("/me/bookings", json=desk(tomorrow), headers=borna["ole"])
    assert refused.status_code == 409
    assert mails_to(inbox, "ole@example.org", confirmations=True) == []
