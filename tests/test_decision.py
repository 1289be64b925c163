"""The decision engine on the real SQLite store: deny reasons, grants, windows, DST, validity."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from edge.agent.access_list import apply_snapshot
from edge.agent.decision import AccessPolicy, Decision
from edge.agent.store import EdgeStore
from hafen.acl import AccessList
from hafen.cards import card_hash, parse_uid
from hafen.protocol import DenyReason
from tests.support.edge import CARD_KEY_HEX

SITE = "leipzig-ost"
OTHER_SITE = "halle-mitte"
TZ = ZoneInfo("Europe/Berlin")
KEY = bytes.fromhex(CARD_KEY_HEX)
CARD = card_hash(KEY, parse_uid("04A1B2C3D4E5F6"))
STRANGER = card_hash(KEY, parse_uid("04FFEEDDCCBBAA"))
POLICY = AccessPolicy(SITE, TZ)
US = timedelta(microseconds=1)

ALWAYS = {"id": "flex"}
DAYTIME = {
    "id": "daytime",
    "sites": [SITE],
    "windows": [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "08:00", "end": "18:00"}],
}
EVERY_DAY = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


@pytest.fixture
def store(tmp_path):
    s = EdgeStore(tmp_path / "edge.db", "normal")
    yield s
    s.close()


def load(store, grants, plans=(ALWAYS,), blocked=False, revoked=False) -> None:
    """Apply a list with one member ``m1`` holding ``grants`` and owning the card CARD."""
    acl = AccessList.model_validate(
        {
            "site": SITE,
            "version": 1,
            "plans": list(plans),
            "members": [{"id": "m1", "blocked": blocked, "grants": list(grants)}],
            "cards": [{"hash": CARD, "member": "m1", "revoked": revoked}],
        }
    )
    assert apply_snapshot(store, acl, SITE, TZ, KEY) == 1


def window_plan(days, start, end) -> dict:
    return {"id": "w", "windows": [{"days": days, "start": start, "end": end}]}


def decide(store, at: str | datetime, card: str = CARD) -> Decision:
    now = datetime.fromisoformat(at) if isinstance(at, str) else at
    return POLICY.decide(store.conn, card, now)


def allowed(store, at: str | datetime) -> bool:
    return decide(store, at).allowed


# --- every outcome --------------------------------------------------------------------------------

NOON = "2026-01-14T12:00:00+01:00"  # a Wednesday


def test_allow_reports_member_and_plan(store):
    load(store, [{"plan": "flex"}])
    assert decide(store, NOON) == Decision(True, None, "m1", "flex")


def test_unknown_card(store):
    load(store, [{"plan": "flex"}])
    assert decide(store, NOON, card=STRANGER) == Decision(False, DenyReason.UNKNOWN_CARD)


def test_revoked_card_denied_even_with_valid_grant(store):
    load(store, [{"plan": "flex"}], revoked=True)
    assert decide(store, NOON) == Decision(False, DenyReason.REVOKED, "m1")


def test_blocked_member_denied_even_with_valid_grant(store):
    load(store, [{"plan": "flex"}], blocked=True)
    assert decide(store, NOON) == Decision(False, DenyReason.BLOCKED, "m1")


def test_wrong_site(store):
    load(store, [{"plan": "halle"}], plans=[{"id": "halle", "sites": [OTHER_SITE]}])
    d = decide(store, NOON)
    assert (d.allowed, d.reason, d.member) == (False, DenyReason.WRONG_SITE, "m1")


def test_not_yet_valid(store):
    load(store, [{"plan": "flex", "valid_from": "2026-02-01T00:00:00+01:00"}])
    assert decide(store, NOON) == Decision(False, DenyReason.NOT_YET_VALID, "m1", "flex")


def test_expired(store):
    load(store, [{"plan": "flex", "valid_until": "2026-01-01T00:00:00+01:00"}])
    assert decide(store, NOON) == Decision(False, DenyReason.EXPIRED, "m1", "flex")


def test_outside_schedule(store):
    load(store, [{"plan": "daytime"}], plans=[DAYTIME])
    assert decide(store, "2026-01-14T20:00:00+01:00") == Decision(
        False, DenyReason.OUTSIDE_SCHEDULE, "m1", "daytime"
    )


def test_schedule_uses_site_time_whatever_the_offset_of_now(store):
    load(store, [{"plan": "daytime"}], plans=[DAYTIME])
    # 02:30 in New York is 08:30 in Leipzig (Wednesday): inside the daytime window.
    assert decide(store, "2026-01-14T02:30:00-05:00") == Decision(True, None, "m1", "daytime")
    assert decide(store, "2026-01-14T01:59:59-05:00").reason == DenyReason.OUTSIDE_SCHEDULE


# --- several grants: any fitting one allows, otherwise the closest one speaks ---------------------

BOOKING_ELSEWHERE = {"sites": [OTHER_SITE]}
EXPIRED_FLEX = {"plan": "flex", "valid_until": "2026-01-01T00:00:00+01:00"}
FUTURE_FLEX = {"plan": "flex", "valid_from": "2026-06-01T00:00:00+02:00"}


@pytest.mark.parametrize(
    ("grants", "reason", "plan"),
    [
        ([BOOKING_ELSEWHERE, {"plan": "daytime"}], DenyReason.OUTSIDE_SCHEDULE, "daytime"),
        ([{"plan": "daytime"}, BOOKING_ELSEWHERE], DenyReason.OUTSIDE_SCHEDULE, "daytime"),
        ([BOOKING_ELSEWHERE, EXPIRED_FLEX], DenyReason.EXPIRED, "flex"),
        ([EXPIRED_FLEX, BOOKING_ELSEWHERE], DenyReason.EXPIRED, "flex"),
        ([BOOKING_ELSEWHERE, FUTURE_FLEX], DenyReason.NOT_YET_VALID, "flex"),
        ([EXPIRED_FLEX, {"plan": "daytime"}], DenyReason.OUTSIDE_SCHEDULE, "daytime"),
        ([{"plan": "daytime"}, FUTURE_FLEX], DenyReason.OUTSIDE_SCHEDULE, "daytime"),
    ],
)
def test_closest_grant_gives_the_reason(store, grants, reason, plan):
    load(store, grants, plans=[ALWAYS, DAYTIME])
    night = "2026-01-14T23:00:00+01:00"
    assert decide(store, night) == Decision(False, reason, "m1", plan)


@pytest.mark.parametrize("first", [True, False])
def test_any_fitting_grant_allows(store, first):
    others = [BOOKING_ELSEWHERE, EXPIRED_FLEX, FUTURE_FLEX]
    grants = [{"plan": "daytime"}, *others] if first else [*others, {"plan": "daytime"}]
    load(store, grants, plans=[ALWAYS, DAYTIME])
    assert decide(store, NOON) == Decision(True, None, "m1", "daytime")


# --- bookings: a grant with sites and no plan -----------------------------------------------------

BOOKING = {
    "sites": [SITE, OTHER_SITE],
    "valid_from": "2026-01-14T09:00:00+01:00",
    "valid_until": "2026-01-14T17:00:00+01:00",
}


@pytest.mark.parametrize(
    ("at", "reason"),
    [
        ("2026-01-14T08:59:59+01:00", DenyReason.NOT_YET_VALID),
        ("2026-01-14T09:00:00+01:00", None),
        ("2026-01-14T23:30:00+01:00", DenyReason.EXPIRED),
        ("2026-01-14T16:59:59.999999+01:00", None),
        ("2026-01-14T17:00:00+01:00", DenyReason.EXPIRED),
    ],
)
def test_booking_at_this_site(store, at, reason):
    load(store, [BOOKING], plans=[])
    d = decide(store, at)
    assert (d.allowed, d.reason, d.member, d.plan) == (reason is None, reason, "m1", None)


def test_booking_at_another_site_only(store):
    load(store, [{**BOOKING, "sites": [OTHER_SITE]}], plans=[])
    d = decide(store, NOON)
    assert (d.allowed, d.reason) == (False, DenyReason.WRONG_SITE)


# --- weekly windows -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        ("2026-01-09T21:59:59.999999+01:00", False),  # Fri before the window
        ("2026-01-09T22:00:00+01:00", True),  # Fri, start inclusive
        ("2026-01-09T23:59:59+01:00", True),
        ("2026-01-10T00:00:00+01:00", True),  # Sat, the morning part belongs to Friday's window
        ("2026-01-10T01:30:00+01:00", True),
        ("2026-01-10T01:59:59.999999+01:00", True),
        ("2026-01-10T02:00:00+01:00", False),  # end exclusive
        ("2026-01-10T22:30:00+01:00", False),  # Sat evening: Saturday is not listed
        ("2026-01-11T01:30:00+01:00", False),  # Sun morning
        ("2026-01-08T23:00:00+01:00", False),  # Thu evening
        ("2026-01-09T01:30:00+01:00", False),  # Fri morning belongs to Thursday
    ],
)
def test_window_past_midnight(store, at, expected):
    load(store, [{"plan": "w"}], plans=[window_plan(["fri"], "22:00", "02:00")])
    d = decide(store, at)
    assert d.allowed is expected
    assert d.reason is (None if expected else DenyReason.OUTSIDE_SCHEDULE)


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        ("2026-01-11T21:59:59+01:00", False),  # Sun
        ("2026-01-11T23:00:00+01:00", True),
        ("2026-01-12T01:00:00+01:00", True),  # Mon morning wraps back to Sunday's window
        ("2026-01-12T03:00:00+01:00", False),
    ],
)
def test_window_past_midnight_wraps_the_week(store, at, expected):
    load(store, [{"plan": "w"}], plans=[window_plan(["sun"], "22:00", "03:00")])
    assert allowed(store, at) is expected


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        ("2026-01-12T17:59:59.999999+01:00", False),
        ("2026-01-12T18:00:00+01:00", True),
        ("2026-01-12T23:59:59.999999+01:00", True),  # Mon, up to the very end of the day
        ("2026-01-13T00:00:00+01:00", False),  # Tue midnight is outside
        ("2026-01-11T23:59:59+01:00", False),  # Sun
    ],
)
def test_window_ending_at_24(store, at, expected):
    load(store, [{"plan": "w"}], plans=[window_plan(["mon"], "18:00", "24:00")])
    assert allowed(store, at) is expected


def test_window_of_the_whole_day(store):
    load(store, [{"plan": "w"}], plans=[window_plan(["wed"], "00:00", "24:00")])
    assert allowed(store, "2026-01-14T00:00:00+01:00") is True
    assert allowed(store, "2026-01-14T23:59:59.999999+01:00") is True
    assert allowed(store, "2026-01-13T23:59:59.999999+01:00") is False
    assert allowed(store, "2026-01-15T00:00:00+01:00") is False


# --- daylight saving time in Europe/Berlin --------------------------------------------------------


@pytest.mark.parametrize(
    ("utc", "expected"),
    [
        # Sat 2026-03-28, CET (UTC+1): 08:00-18:00 local is 07:00-17:00 UTC.
        ("2026-03-28T06:59:59", False),
        ("2026-03-28T07:00:00", True),
        ("2026-03-28T16:59:59", True),
        ("2026-03-28T17:00:00", False),
        # Sun 2026-03-29, CEST (UTC+2) from 01:00 UTC: 06:00-16:00 UTC.
        ("2026-03-29T05:59:59", False),
        ("2026-03-29T06:00:00", True),
        ("2026-03-29T15:59:59", True),
        ("2026-03-29T16:00:00", False),
        # Sat 2026-10-24, still CEST: 06:00-16:00 UTC.
        ("2026-10-24T06:00:00", True),
        ("2026-10-24T16:00:00", False),
        # Sun 2026-10-25, CET again from 01:00 UTC: 07:00-17:00 UTC.
        ("2026-10-25T06:59:59", False),
        ("2026-10-25T07:00:00", True),
        ("2026-10-25T16:59:59", True),
        ("2026-10-25T17:00:00", False),
    ],
)
def test_daily_window_follows_local_time_across_dst(store, utc, expected):
    load(store, [{"plan": "w"}], plans=[window_plan(EVERY_DAY, "08:00", "18:00")])
    assert allowed(store, utc + "+00:00") is expected


@pytest.mark.parametrize(
    ("utc", "local", "expected"),
    [
        ("2026-03-29T00:59:59", "01:59:59 CET", False),
        ("2026-03-29T01:00:00", "03:00:00 CEST", True),  # 02:00 local is skipped
        ("2026-03-29T01:59:59", "03:59:59 CEST", True),
        ("2026-03-29T02:00:00", "04:00:00 CEST", False),
    ],
)
def test_spring_forward_window_after_the_gap(store, utc, local, expected):
    load(store, [{"plan": "w"}], plans=[window_plan(["sun"], "03:00", "04:00")])
    assert allowed(store, utc + "+00:00") is expected, local


@pytest.mark.parametrize(
    ("utc", "expected"),
    [
        ("2026-03-29T00:00:00", True),  # 01:00 CET
        ("2026-03-29T00:59:59.999999", True),  # 01:59:59.999999 CET
        ("2026-03-29T01:00:00", False),  # 03:00 CEST: the window 01:00-02:30 is over
    ],
)
def test_spring_forward_window_into_the_gap(store, utc, expected):
    load(store, [{"plan": "w"}], plans=[window_plan(["sun"], "01:00", "02:30")])
    assert allowed(store, utc + "+00:00") is expected


@pytest.mark.parametrize(
    ("utc", "expected"),
    [
        ("2026-10-24T23:59:59", False),  # 01:59:59 CEST
        ("2026-10-25T00:00:00", True),  # 02:00 CEST, first pass
        ("2026-10-25T00:29:59", True),  # 02:29:59 CEST
        ("2026-10-25T00:30:00", False),  # 02:30 CEST
        ("2026-10-25T00:59:59", False),  # 02:59:59 CEST
        ("2026-10-25T01:00:00", True),  # 02:00 CET, second pass: the window opens again
        ("2026-10-25T01:29:59.999999", True),  # 02:29:59.999999 CET
        ("2026-10-25T01:30:00", False),  # 02:30 CET
    ],
)
def test_fall_back_repeated_hour_is_decided_by_wall_time(store, utc, expected):
    load(store, [{"plan": "w"}], plans=[window_plan(["sun"], "02:00", "02:30")])
    assert allowed(store, utc + "+00:00") is expected


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        ("02:30", "02:31", True),  # both 02:30s lie inside
        ("02:31", "03:00", False),  # both 02:30s lie outside
        ("03:00", "04:00", False),
        ("01:00", "02:30", False),
    ],
)
def test_fall_back_both_0230_instants_agree(store, start, end, expected):
    load(store, [{"plan": "w"}], plans=[window_plan(["sun"], start, end)])
    first = datetime.fromisoformat("2026-10-25T00:30:00+00:00")  # 02:30 CEST
    second = datetime.fromisoformat("2026-10-25T01:30:00+00:00")  # 02:30 CET
    assert (first.astimezone(TZ).fold, second.astimezone(TZ).fold) == (0, 1)
    assert (allowed(store, first), allowed(store, second)) == (expected, expected)


# --- validity boundaries --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("valid_from", "at", "reason"),
    [
        ("2026-03-01T09:00:00+01:00", "2026-03-01T09:00:00+01:00", None),
        ("2026-03-01T09:00:00+01:00", "2026-03-01T08:00:00+00:00", None),  # same instant
        ("2026-03-01T09:00:00+01:00", "2026-03-01T08:59:59.999999+01:00", "not_yet_valid"),
        ("2026-03-01T09:00:00.000001+01:00", "2026-03-01T09:00:00+01:00", "not_yet_valid"),
        # A bare date starts at local midnight: CET before the change, CEST after.
        ("2026-03-29", "2026-03-28T23:00:00+00:00", None),
        ("2026-03-29", "2026-03-28T22:59:59.999999+00:00", "not_yet_valid"),
        ("2026-07-01", "2026-06-30T22:00:00+00:00", None),
        ("2026-07-01", "2026-06-30T21:59:59.999999+00:00", "not_yet_valid"),
        ("2026-07-01", "2026-07-01T00:00:00+02:00", None),
    ],
)
def test_valid_from_is_inclusive(store, valid_from, at, reason):
    load(store, [{"plan": "flex", "valid_from": valid_from}])
    assert decide(store, at).reason == (reason and DenyReason(reason))


@pytest.mark.parametrize(
    ("valid_until", "at", "reason"),
    [
        ("2026-03-31T18:00:00+02:00", "2026-03-31T17:59:59.999999+02:00", None),
        ("2026-03-31T18:00:00+02:00", "2026-03-31T18:00:00+02:00", "expired"),
        ("2026-03-31T18:00:00+02:00", "2026-03-31T16:00:00+00:00", "expired"),  # same instant
        ("2026-03-31T18:00:00+02:00", "2026-03-31T15:59:59.999999+00:00", None),
        # A bare date lasts until the end of that day in Europe/Berlin.
        ("2026-03-31", "2026-03-31T23:59:59.999999+02:00", None),
        ("2026-03-31", "2026-04-01T00:00:00+02:00", "expired"),
        ("2026-03-31", "2026-03-31T21:59:59.999999+00:00", None),
        ("2026-03-31", "2026-03-31T22:00:00+00:00", "expired"),
        # The day of the change back to CET has 25 hours and ends at 23:00 UTC.
        ("2026-10-25", "2026-10-25T22:59:59.999999+00:00", None),
        ("2026-10-25", "2026-10-25T23:00:00+00:00", "expired"),
        ("2026-01-31", "2026-01-31T22:59:59.999999+00:00", None),
        ("2026-01-31", "2026-01-31T23:00:00+00:00", "expired"),
    ],
)
def test_valid_until_is_exclusive(store, valid_until, at, reason):
    load(store, [{"plan": "flex", "valid_until": valid_until}])
    assert decide(store, at).reason == (reason and DenyReason(reason))


def test_one_day_validity(store):
    load(store, [{"plan": "flex", "valid_from": "2026-03-31", "valid_until": "2026-03-31"}])
    day_start = datetime(2026, 3, 31, tzinfo=TZ)
    day_end = datetime(2026, 4, 1, tzinfo=TZ)
    assert decide(store, day_start - US).reason == DenyReason.NOT_YET_VALID
    assert decide(store, day_start).allowed is True
    assert decide(store, day_end - US).allowed is True
    assert decide(store, day_end).reason == DenyReason.EXPIRED


def test_validity_and_schedule_together(store):
    load(store, [{"plan": "daytime", "valid_until": "2026-01-14"}], plans=[DAYTIME])
    assert decide(store, "2026-01-14T12:00:00+01:00").allowed is True
    assert decide(store, "2026-01-14T20:00:00+01:00").reason == DenyReason.OUTSIDE_SCHEDULE
    # Past the end, expiry is reported even inside the window.
    assert decide(store, "2026-01-15T12:00:00+01:00").reason == DenyReason.EXPIRED
