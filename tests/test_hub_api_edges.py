"""The API at the edges of its inputs, on SQLite and PostgreSQL: times are compared as instants
whatever their offset, and anything at or beyond the end of a range is a 422, never a 500."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert

from hub import db
from tests.support.booking import at as local_time, today
from tests.support.events import tap
from tests.support.hub import PASSWORD, as_user
from tests.support.sites import add_sites

AT = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def test_event_search_compares_times_as_instants_whatever_the_offset(api):
    """10:00 UTC is 00:00 the next day at +14:00 and 22:00 the day before at -12:00: a
    search from or until those times finds the event on both stores."""
    add_sites(api)
    with api.engine.begin() as conn:
        conn.execute(insert(db.events), [tap("leipzig-ost", "anna", AT)])
    nadia = as_user(api, "nadia")

    def found(**window: str) -> int:
        response = api.get("/events", params=window, headers=nadia)
        assert response.status_code == 200, response.text
        return len(response.json())

    assert found(since="2026-11-23T00:00:00+14:00") == 1  # 10:00 UTC, the event's own time
    assert found(since="2026-11-23T00:00:01+14:00") == 0
    assert found(until="2026-11-21T22:00:01-12:00") == 1  # 10:00:01 UTC
    assert found(until="2026-11-21T22:00:00-12:00") == 0  # until is exclusive
    assert found(since="2026-11-22T09:59:59", until="2026-11-22T10:00:01") == 1  # no offset: UTC
    assert found(since="2026-11-22T09:00:00-12:00") == 0  # 21:00 UTC
    # And the event's time comes back as an instant too: with its offset, on both stores.
    [event] = api.get("/events", headers=nadia).json()
    assert datetime.fromisoformat(event["at"]) == AT


#: A site at each end of the world's offsets.
ZONES = {"kiritimati": "Pacific/Kiritimati", "baker": "Etc/GMT+12"}


@pytest.fixture
def edges(api):
    """Leipzig-Ost and Borna, a site at each end of the world's offsets (Kiritimati, +14:00;
    Baker Island, -12:00), the member anna and nadia's header."""
    nadia = add_sites(api)
    for site, zone in ZONES.items():
        body = {"id": site, "name": site.title(), "timezone": zone}
        assert api.post("/sites", json=body, headers=nadia).status_code == 201
    assert (
        api.post("/members", json={"id": "anna", "name": "Anna"}, headers=nadia).status_code == 201
    )
    return nadia


#: Times at and past the ends of the calendar, with the widest offsets: each once overflowed.
FAR_TIMES = (
    "9999-12-31T23:00:00-12:00",  # past the end of year 9999 in UTC
    "9999-12-31T10:00:00+14:00",
    "0001-01-01T00:00:00+14:00",  # before year 1 in UTC
    "0001-01-01T12:00:00-12:00",
)


def test_times_at_the_ends_of_the_calendar_are_422(api, edges):
    for at in FAR_TIMES:
        refused_everywhere(api, edges, at)
    with api.engine.connect() as conn:
        assert conn.execute(db.bookings.select()).all() == []
        assert conn.execute(db.grants.select()).all() == []


def refused_everywhere(api, nadia: dict[str, str], at: str) -> None:
    for path, params in (
        ("/events", {"since": at}),
        ("/events", {"until": at}),
        ("/sites/kiritimati/occupancy/history", {"since": at}),
        ("/sites/baker/occupancy/history", {"since": "2026-11-22T00:00:00Z", "until": at}),
    ):
        answer = api.get(path, params=params, headers=nadia)
        assert answer.status_code == 422, (path, params, answer.text)
        assert "out of range" in answer.text
    later = at.replace(":00:00", ":30:00")
    for site in ("kiritimati", "baker"):
        booking = {"member": "anna", "starts_at": at, "ends_at": later}
        answer = api.post(f"/sites/{site}/bookings", json=booking, headers=nadia)
        assert answer.status_code == 422, answer.text
    for grant in ({"sites": ["baker"], "valid_from": at}, {"sites": ["baker"], "valid_until": at}):
        assert api.post("/members/anna/grants", json=grant, headers=nadia).status_code == 422


def test_days_at_the_ends_of_the_calendar_are_422_in_any_zone(api, edges):
    nadia = edges
    for site, day in itertools.product(("kiritimati", "baker"), ("0001-01-01", "9999-12-31")):
        for what in ("visits", "bookings"):
            answer = api.get(f"/sites/{site}/{what}", params={"day": day}, headers=nadia)
            assert answer.status_code == 422, (site, what, answer.text)
            assert "give a day between 0001-01-08 and 9999-12-24" in answer.text


def test_times_and_days_inside_the_range_work_in_the_extreme_zones(api, edges):
    """A week in from either end of the calendar, the widest offsets still compute."""
    nadia = edges
    for site in ("kiritimati", "baker"):
        for day in ("0001-01-08", "9999-12-24"):
            answer = api.get(f"/sites/{site}/bookings", params={"day": day}, headers=nadia)
            assert answer.status_code == 200, answer.text
        # Year 9999 lies beyond any site's booking horizon: refused by that rule, not a 500.
        far = {
            "member": "anna",
            "starts_at": "9999-12-23T00:00:00+14:00",
            "ends_at": "9999-12-23T10:00:00+14:00",
        }
        refused = api.post(f"/sites/{site}/bookings", json=far, headers=nadia)
        assert refused.status_code == 422, refused.text
        assert "takes bookings up to 60 days ahead" in refused.json()["detail"]
        # Tomorrow in the site's zone, given in the other end's offset, is kept in UTC.
        zone = ZoneInfo(ZONES[site])
        tomorrow = today(zone) + timedelta(days=1)
        ends = datetime.fromisoformat(local_time(tomorrow, "17:00", zone))
        other_end = ZoneInfo(ZONES["baker" if site == "kiritimati" else "kiritimati"])
        booking = {
            "member": "anna",
            "starts_at": local_time(tomorrow, "09:00", zone),
            "ends_at": ends.astimezone(other_end).isoformat(),
        }
        made = api.post(f"/sites/{site}/bookings", json=booking, headers=nadia)
        assert made.status_code == 201, made.text
        assert made.json()["ends_at"] == ends.astimezone(UTC).isoformat().replace("+00:00", "Z")
    assert (
        api.get("/events", params={"since": "0001-01-08T14:00:00+14:00"}, headers=nadia).json()
        == []
    )


#: Numbers JSON has not, though Python's parser takes them (1e999 overflows to infinity), and
#: integers no store keeps; and what the 422 says of each.
NUMBERS = {
    "NaN": "is not a finite number",
    "Infinity": "is not a finite number",
    "-Infinity": "is not a finite number",
    "1e999": "is not a finite number",
    str(2**64): "is beyond a 64-bit integer",
    str(-(2**63) - 1): "is beyond a 64-bit integer",
}


def test_numbers_that_are_not_finite_or_beyond_64_bits_are_422(api, edges):
    """A 422 naming the problem, whose answer is itself valid JSON; nothing is stored. (Every
    integer field had its bounds already: huge integers are refused before them now.)"""
    nadia = {**edges, "content-type": "application/json"}
    for (number, why), (path, body) in itertools.product(
        NUMBERS.items(),
        (
            ("/sites/leipzig-ost/devices/door-1/unlock", '{"seconds": N}'),
            ("/sites", '{"id": "x", "name": "X", "capacity": N}'),
            ("/auth/tokens", '{"name": "script", "days": N}'),
            ("/members/anna/grants", '{"sites": ["borna"], "extra": [N]}'),
        ),
    ):
        answer = api.post(path, content=body.replace("N", number).encode(), headers=nadia)
        assert answer.status_code == 422, (path, number, answer.text)
        assert answer.json()["detail"][0]["msg"] == f"Value error, {why}"
    sites = [s["id"] for s in api.get("/sites", headers=edges).json()]
    assert sites == ["baker", "borna", "kiritimati", "leipzig-ost"]
    assert [t["name"] for t in api.get("/auth/tokens", headers=edges).json()] == ["sign-in"]
    for answer in (
        api.get("/events", params={"before_id": str(2**64)}, headers=edges),
        api.delete(f"/bookings/{2**64}", headers=edges),
    ):
        assert answer.status_code == 422, answer.text


#: Text PostgreSQL cannot store (a NUL) or no encoding can carry (an unpaired surrogate), as
#: a JSON body spells it.
UNSTORABLE = ("\\u0000", "\\ud800", "a\\udfffb")


def test_unstorable_text_in_a_json_body_is_422_and_stores_nothing(api, edges):
    nadia = {**edges, "content-type": "application/json"}
    for text, (path, body) in itertools.product(
        UNSTORABLE,
        (
            ("/members", '{"id": "bert", "name": "B-T"}'),
            ("/members", '{"id": "bert", "name": "Bert", "email": "T@example.org"}'),
            ("/sites", '{"id": "x", "name": "T", "district": "T"}'),
            ("/auth/tokens", '{"name": "T"}'),
            ("/members/anna/grants", '{"sites": ["borna"], "T": 1}'),  # in a key too
        ),
    ):
        answer = api.post(path, content=body.replace("T", text).encode(), headers=nadia)
        assert answer.status_code == 422, (path, text, answer.text)
    with api.engine.connect() as conn:
        assert conn.execute(db.members.select().where(db.members.c.id == "bert")).all() == []


def test_a_nul_in_a_query_or_path_parameter_is_422(api, edges):
    nadia = edges
    for path in (
        "/events?site=leipzig%00-ost",
        "/events?member=anna%00",
        "/members?q=%00",
        "/members?after=a%00",
        "/sites/leipzig%00-ost",
        "/sites/leipzig%00-ost/devices",
        "/reports/monthly?month=2026-11&site=%00",
        "/ui/live?site=%00",
    ):
        answer = api.get(path, headers=nadia)
        assert answer.status_code == 422, (path, answer.text)
    changed = api.patch("/users/nadia%00", json={"disabled": True}, headers=nadia)
    assert changed.status_code == 422


def test_a_nul_at_sign_in_is_422_in_the_api_and_on_the_dashboard(api, edges):
    form = {"username": "nadia\x00", "password": PASSWORD}
    assert api.post("/auth/token", data=form).status_code == 422
    page = api.post("/ui/sign-in", data={**form, "next": "/ui/"}, follow_redirects=False)
    assert page.status_code == 422 and "text/html" in page.headers["content-type"]
    assert (
        api.post("/auth/token", data={"username": "nadia", "password": "x\x00" * 5}).status_code
        == 422
    )


#: Years whose digits are not ASCII: a regular expression's ``\d`` and ``strptime``'s year take
#: them (Arabic-Indic, fullwidth), but no stored month is spelt so and no header carries them.
FOREIGN_MONTHS = ("٢٠٢٦-11", "２０２６-11", "2٠26-11")


def test_a_month_in_digits_other_than_ascii_is_422_in_the_api_and_on_the_dashboard(api, edges):
    """Once an empty report under the month as given, and a 500 from the CSV download (its
    file name went into a header that takes only Latin-1)."""
    nadia = edges
    api.post("/ui/sign-in", data={"username": "nadia", "password": PASSWORD, "next": "/ui/"})
    for month in FOREIGN_MONTHS:
        # A month that is not one: 422 from the API and the CSV, the page's own 400 on a page.
        for path, status in (
            ("/reports/monthly", 422),
            ("/reports/monthly.csv", 422),
            ("/ui/reports", 400),
            ("/ui/reports.csv", 422),
        ):
            answer = api.get(path, params={"month": month}, headers=nadia)
            assert answer.status_code == status, (path, month, answer.text)
    csv = api.get("/reports/monthly.csv", params={"month": "2026-11"}, headers=nadia)
    assert csv.headers["content-disposition"] == 'attachment; filename="hafen-network-2026-11.csv"'
