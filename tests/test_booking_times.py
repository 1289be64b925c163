"""The booking rules of when (hub.services.booking_rules), at fixed instants: a site's hours on
a day, a desk's part clipped to them, a room's quarter hours, and each refusal's words."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from hafen.acl import TimeWindow
from hub.services.booking_rules import (
    BookingConflict,
    BookingInvalid,
    Rule,
    RuleBroken,
    SiteRules,
    desk_window,
    refuse,
    timed_window,
    weekdays_text,
)
from hub.services.desk_pool import Part
from hub.services.wording import said

BERLIN = ZoneInfo("Europe/Berlin")
#: Wednesday 9 December 2026, 10:00 in Berlin.
NOW = datetime(2026, 12, 9, 9, 0, tzinfo=UTC)
WED, THU, SAT = date(2026, 12, 9), date(2026, 12, 10), date(2026, 12, 12)


WEEKDAYS = TimeWindow(days=["mon", "tue", "wed", "thu", "fri"], start="08:00", end="18:00")
BORNA = SiteRules(
    id="borna",
    zone=BERLIN,
    desks=10,
    opening=(WEEKDAYS,),
    closed_days=frozenset({date(2026, 12, 24)}),
    horizon_days=60,
    cancel_minutes=60,
)


def site(**changes) -> SiteRules:
    """Borna: 10 desks, open Mon–Fri 08:00–18:00, closed on 24 December; or as changed."""
    return dataclasses.replace(BORNA, **changes)


def local(day: date, clock: str) -> datetime:
    hours, minutes = map(int, clock.split(":"))
    return datetime(day.year, day.month, day.day, hours, minutes, tzinfo=BERLIN)


def refused(rule: Rule, call) -> str:
    with pytest.raises(RuleBroken) as caught:
        call()
    assert caught.value.rule == rule, str(caught.value)
    return str(caught.value)


def test_a_desks_part_is_clipped_to_the_days_hours():
    morning = desk_window(site(), THU, Part.MORNING, NOW)
    assert (morning.day, morning.starts_at, morning.ends_at) == (
        THU,
        local(THU, "08:00"),
        local(THU, "13:00"),
    )
    day = desk_window(site(), THU, Part.DAY, NOW)
    assert (day.starts_at, day.ends_at) == (local(THU, "08:00"), local(THU, "18:00"))
    always = desk_window(site(opening=None), SAT, Part.AFTERNOON, NOW)
    assert (always.starts_at, always.ends_at) == (
        local(SAT, "13:00"),
        local(date(2026, 12, 13), "00:00"),
    )


def test_a_window_past_midnight_keeps_the_booking_within_its_day():
    late = TimeWindow(days=["sat"], start="18:00", end="02:00")
    window = desk_window(site(opening=(late,)), SAT, Part.AFTERNOON, NOW)
    assert (window.starts_at, window.ends_at) == (
        local(SAT, "18:00"),
        local(date(2026, 12, 13), "00:00"),
    )


def test_closed_weekdays_and_closed_days_name_when_it_is_open():
    assert refused(Rule.CLOSED, lambda: desk_window(site(), SAT, Part.DAY, NOW)) == (
        "borna is closed on Saturdays; open Mon–Fri"
    )
    assert refused(Rule.CLOSED, lambda: desk_window(site(), date(2026, 12, 24), Part.DAY, NOW)) == (
        "borna is closed on 2026-12-24; the next open day is 2026-12-25"
    )
    never = site(opening=())
    assert "no opening hours" in refused(
        Rule.CLOSED, lambda: desk_window(never, THU, Part.DAY, NOW)
    )


def test_a_part_outside_the_hours_names_them_and_the_part_that_is_open():
    afternoons = site(opening=(TimeWindow(days=["thu"], start="14:00", end="20:00"),))
    assert refused(Rule.OUTSIDE_HOURS, lambda: desk_window(afternoons, THU, Part.MORNING, NOW)) == (
        "borna is open 14:00–20:00 on Thursdays: the morning is outside them; book the afternoon"
    )


def test_the_past_and_beyond_the_horizon_are_refused_with_what_can_be_booked():
    assert refused(Rule.PAST, lambda: desk_window(site(), date(2020, 3, 2), Part.DAY, NOW)) == (
        "2020-03-02 is over; book 2026-12-09 or a later day"
    )
    afternoon = local(WED, "14:00").astimezone(UTC)
    assert refused(Rule.PAST, lambda: desk_window(site(), WED, Part.MORNING, afternoon)) == (
        "the morning of 2026-12-09 at borna is over; book the afternoon or a later day"
    )
    evening = local(WED, "18:30").astimezone(UTC)
    assert "book a later day" in refused(
        Rule.PAST, lambda: desk_window(site(), WED, Part.AFTERNOON, evening)
    )
    assert desk_window(site(), WED, Part.AFTERNOON, afternoon).ends_at == local(WED, "18:00")
    assert refused(Rule.TOO_FAR, lambda: desk_window(site(), date(2027, 2, 8), Part.DAY, NOW)) == (
        "borna takes bookings up to 60 days ahead: until 2027-02-07"
    )
    assert desk_window(site(), date(2027, 2, 5), Part.DAY, NOW).day == date(2027, 2, 5)


def test_a_site_without_desks_takes_no_desk_booking():
    for desks in (None, 0):
        assert "borna has no desks to book" in refused(
            Rule.NO_DESKS, lambda d=desks: desk_window(site(desks=d), THU, Part.DAY, NOW)
        )


def test_a_rooms_time_is_on_quarter_hours_within_one_days_hours():
    window = timed_window(site(), local(THU, "09:15"), local(THU, "11:45"), NOW, True)
    assert (window.day, window.starts_at) == (THU, local(THU, "09:15"))
    assert (
        refused(
            Rule.OFF_QUARTER,
            lambda: timed_window(site(), local(THU, "09:10"), local(THU, "11:50"), NOW, True),
        )
        == "rooms are booked in quarter hours (:00, :15, :30, :45): for example 09:00–12:00"
    )
    assert refused(
        Rule.OUTSIDE_HOURS,
        lambda: timed_window(site(), local(THU, "17:00"), local(THU, "19:00"), NOW, True),
    ) == (
        "borna is open 08:00–18:00 on Thursdays (2026-12-10); book within them (a booking"
        " lies within one day)"
    )
    assert "is over" in refused(
        Rule.PAST, lambda: timed_window(site(), local(WED, "08:00"), local(WED, "09:00"), NOW, True)
    )
    # An operator's day guest needs no quarter hours, and may have begun already.
    guest = timed_window(site(), local(WED, "09:58"), local(WED, "17:03"), NOW, False)
    assert guest.day == WED


def test_weekdays_read_as_runs():
    assert said(weekdays_text({0, 1, 2, 3, 4})) == "Mon–Fri"
    assert said(weekdays_text({0, 2, 5, 6})) == "Mon, Wed, Sat–Sun"


def test_a_rule_answers_422_if_never_possible_and_409_if_what_is_booked_stands_in_the_way():
    assert isinstance(refuse(Rule.CLOSED, "x"), BookingInvalid)
    for rule in (Rule.FULL, Rule.ROOM_TAKEN, Rule.DAYS_USED, Rule.HOLDS_DESK, Rule.CANCEL_TOO_LATE):
        assert isinstance(refuse(rule, "x"), BookingConflict)
