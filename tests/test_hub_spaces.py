"""Finding a space (issue 16): the network's sites nearest a place, each with its desks free now
(the sensors' count against the bookings not yet claimed), free on a day by halves, open or
shut, and how full it usually is; a postcode or town instead of coordinates. Anyone signed in
may ask, a member too. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert

from hafen.acl import TimeWindow
from hafen.config import ConfigError
from hub import db
from hub.app import create_app
from hub.auth import Role
from hub.services.desk_pool import Part
from hub.services.opening import WeeklyHours
from hub.services.places import Place, load_gazetteer
from hub.services.space_cache import SpaceFinder
from hub.services.space_models import SpacesQuery
from hub.services.spaces import find_spaces
from hub.settings import load_hub_settings
from hub.timeline import HOLD
from tests.support.hub import add_staff, add_user, as_user

BERLIN = ZoneInfo("Europe/Berlin")
BORNA = {"lat": 51.1167, "lon": 12.4969}
#: Sites of the Leipzig region: three with a place and desks, one without a place, one
#: without desks (a village meeting point that takes no bookings).
NETWORK: list[dict[str, object]] = [
    {"id": "borna", "latitude": 51.1167, "longitude": 12.4969, "address": "Markt 1, 04552 Borna"},
    {"id": "grimma", "latitude": 51.2386, "longitude": 12.7253, "address": "Markt 5, 04668 Grimma"},
    {
        "id": "leipzig-ost",
        "latitude": 51.3435,
        "longitude": 12.4130,
        "address": "Eisenbahnstraße 1, 04315 Leipzig",
    },
    {"id": "dorf"},
    {"id": "treff", "latitude": 51.13, "longitude": 12.50, "desks": None},
]
#: A few rows of GeoNames' DE.txt, as an operator would load it.
GAZETTEER = """\
DE\t04552\tBorna\tSachsen\tSN\t\t00\tLandkreis Leipzig\t14729\t51.1227\t12.4972\t4
DE\t04668\tGrimma\tSachsen\tSN\t\t00\tLandkreis Leipzig\t14729\t51.2384\t12.7256\t4
DE\t04103\tLeipzig\tSachsen\tSN\t\t00\tKreisfreie Stadt Leipzig\t14713\t51.3396\t12.3841\t4
DE\t04109\tLeipzig\tSachsen\tSN\t\t00\tKreisfreie Stadt Leipzig\t14713\t51.3397\t12.3731\t4
DE\t02826\tGörlitz\tSachsen\tSN\t\t00\tLandkreis Görlitz\t14626\t51.1526\t14.9873\t4
"""


def add_network(client: TestClient) -> dict[str, str]:
    """The sites of ``NETWORK``, ten desks each unless said otherwise, always open; added as
    nadia, the network admin (whose header it returns)."""
    admin = as_user(client, "nadia")
    for site in NETWORK:
        body = {"name": str(site["id"]).title(), "desks": 10, **site}
        assert client.post("/sites", json=body, headers=admin).status_code == 201
    return admin


def local_today() -> date:
    return datetime.now(BERLIN).date()


def book(engine, site: str, day: date, part: str = "day", **more) -> None:
    """A desk booking put straight into the store (the booking API is another part of 16)."""
    start = datetime.combine(day, datetime.min.time(), BERLIN).astimezone(UTC)
    with engine.begin() as conn:
        conn.execute(
            insert(db.bookings).values(
                member_id="anna",
                site_id=site,
                kind="desk",
                starts_at=start,
                ends_at=start + timedelta(days=1),
                created_at=datetime.now(UTC),
                day=day,
                part=part,
                **more,
            )
        )


def sense(engine, site: str, count: int, high: int | None, at: datetime) -> None:
    """A door's newest sample, as ingest keeps it for the live overview."""
    with engine.begin() as conn:
        conn.execute(
            insert(db.occupancy_now).values(
                site=site,
                device="door-1",
                at=at,
                count=count,
                low=None if high is None else max(count - 1, 0),
                high=high,
                capacity=20,
                confidence=0.9,
                present=count > 0,
                rooms={},
                co2={},
            )
        )


def spaces_by_id(answer) -> dict[str, dict]:
    assert answer.status_code == 200, answer.text
    return {s["id"]: s for s in answer.json()["spaces"]}


def test_spaces_come_nearest_first_and_those_without_a_place_last(api):
    admin = add_network(api)
    answer = api.get("/spaces", params=BORNA, headers=admin)
    assert answer.status_code == 200, answer.text
    spaces = answer.json()["spaces"]
    assert [s["id"] for s in spaces] == ["borna", "treff", "grimma", "leipzig-ost", "dorf"]
    assert spaces[0]["distance_km"] == 0
    assert spaces[2]["distance_km"] == pytest.approx(20.7, abs=0.5)
    assert spaces[3]["distance_km"] == pytest.approx(26.2, abs=0.5)
    assert spaces[-1]["distance_km"] is None
    treff = spaces[1]
    assert treff["bookable"] is False and treff["free_now"] is None
    assert treff["day_status"] == "not_bookable"
    only_bookable = api.get("/spaces", params={**BORNA, "bookable": "true"}, headers=admin)
    assert "treff" not in spaces_by_id(only_bookable)
    two = api.get("/spaces", params={**BORNA, "limit": 2}, headers=admin).json()["spaces"]
    assert [s["id"] for s in two] == ["borna", "treff"]
    assert answer.json()["place"] == {"name": None, "latitude": 51.1167, "longitude": 12.4969}


def test_free_now_is_desks_less_the_larger_of_sensors_and_unclaimed_bookings(api):
    admin = add_network(api)
    today, now = local_today(), datetime.now(UTC)
    # Borna: the sensors say 3 (at most 5); 2 booked and not here yet, 1 here already.
    sense(api.engine, "borna", count=3, high=5, at=now)
    book(api.engine, "borna", today)
    book(api.engine, "borna", today)
    book(api.engine, "borna", today, arrived_at=now)
    # Grimma: 7 booked and not here, a sensor that counts 2 (a door without an interval).
    sense(api.engine, "grimma", count=2, high=None, at=now)
    for _ in range(7):
        book(api.engine, "grimma", today)
    book(api.engine, "grimma", today, cancelled_at=now)  # cancelled: holds nothing
    # Leipzig: its sensor went quiet (a stale sample is unknown, not empty): bookings alone.
    sense(api.engine, "leipzig-ost", count=9, high=9, at=now - HOLD - timedelta(minutes=1))
    book(api.engine, "leipzig-ost", today)
    sense(api.engine, "dorf", count=14, high=15, at=now)  # more people than desks: 0, not -5
    spaces = spaces_by_id(api.get("/spaces", params=BORNA, headers=admin))
    assert (spaces["borna"]["free_now"], spaces["borna"]["free_now_from"]) == (5, "sensors")
    assert (spaces["grimma"]["free_now"], spaces["grimma"]["free_now_from"]) == (3, "sensors")
    assert spaces["leipzig-ost"]["free_now"] == 9
    assert spaces["leipzig-ost"]["free_now_from"] == "bookings"
    assert spaces["dorf"]["free_now"] == 0


def test_the_unclaimed_bookings_that_count_now_are_those_of_the_half_day_now(engine):
    with engine.begin() as conn:
        conn.execute(insert(db.sites).values(id="borna", timezone="Europe/Berlin", desks=10))
    day = date(2030, 3, 5)  # a Tuesday
    for part in ("morning", "morning", "morning", "afternoon", "day"):
        book(engine, "borna", day, part)
    finder = SpaceFinder()
    at_ten = datetime(2030, 3, 5, 10, 0, tzinfo=BERLIN)
    at_three = datetime(2030, 3, 5, 15, 0, tzinfo=BERLIN)
    found = find_spaces(engine, finder, SpacesQuery(), now=at_ten)
    morning = found.model().spaces[0]
    afternoon = find_spaces(engine, finder, SpacesQuery(), now=at_three).model().spaces[0]
    assert (morning.free_now, morning.free_now_from) == (6, "bookings")
    assert afternoon.free_now == 8
    # What the API sends, put together from each space's JSON, says the same as the model.
    assert json.loads(found.json()) == json.loads(found.model().model_dump_json())


def test_free_on_a_day_by_halves(api):
    admin = add_network(api)
    day = local_today() + timedelta(days=3)
    for part in ("day", "day", "morning", "morning", "morning", "afternoon"):
        book(api.engine, "grimma", day, part)
    book(api.engine, "grimma", day, "day", released_at=datetime.now(UTC))  # released: free
    book(api.engine, "grimma", day + timedelta(days=1), "day")  # another day
    answer = api.get("/spaces", params={**BORNA, "day": day.isoformat()}, headers=admin)
    grimma = spaces_by_id(answer)["grimma"]
    assert grimma["day"] == day.isoformat() and grimma["day_status"] == "open"
    # Taken: 5 in the morning, 3 in the afternoon; a whole day needs a desk in both.
    assert grimma["free_on_day"] == {"day": 5, "morning": 5, "afternoon": 7}
    assert spaces_by_id(answer)["borna"]["free_on_day"] == {
        "day": 10,
        "morning": 10,
        "afternoon": 10,
    }


def test_closed_days_hours_and_the_horizon_show_on_the_day(api):
    admin = add_network(api)
    today = local_today()
    saturday = today + timedelta(days=(5 - today.weekday()) % 7 or 7)
    weekdays = [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "00:00", "end": "24:00"}]
    mornings = [{"days": ["sat"], "start": "09:00", "end": "12:00"}]
    changes = {
        "borna": {"closed_days": [saturday.isoformat(), today.isoformat()]},
        "grimma": {"opening_hours": weekdays},
        "leipzig-ost": {"opening_hours": mornings},
        "dorf": {"horizon_days": 1},
    }
    for site, change in changes.items():
        assert api.patch(f"/sites/{site}", json=change, headers=admin).is_success
    answer = api.get("/spaces", params={**BORNA, "day": saturday.isoformat()}, headers=admin)
    spaces = spaces_by_id(answer)
    assert (spaces["borna"]["day_status"], spaces["borna"]["free_on_day"]) == ("closed_day", None)
    assert spaces["borna"]["open_now"] is False and spaces["borna"]["free_now"] is None
    assert spaces["grimma"]["day_status"] == "closed"
    assert spaces["leipzig-ost"]["free_on_day"] == {"day": None, "morning": 10, "afternoon": None}
    assert spaces["dorf"]["day_status"] == (
        "too_far_ahead" if saturday > today + timedelta(1) else "open"
    )
    assert spaces["treff"]["day_status"] == "not_bookable"


def test_usually_comes_from_the_usual_week(api):
    admin = add_network(api)
    now = datetime.now(UTC)
    hour = now.replace(minute=0, second=0, microsecond=0)
    rows = [
        # Borna: 9 people at this hour on this weekday in each of the last four weeks.
        {
            "site": "borna",
            "device": "door-1",
            "hour": hour - timedelta(weeks=w),
            "person_seconds": 9 * 3600.0,
        }
        for w in range(1, 5)
    ] + [
        # Grimma: two doors, together 2 people now and then (of 10 desks: quiet).
        {"site": "grimma", "device": d, "hour": hour - timedelta(weeks=1), "person_seconds": 3600.0}
        for d in ("door-1", "door-2")
    ]
    with api.engine.begin() as conn:
        conn.execute(
            insert(db.occupancy_hours),
            [{"occupied_seconds": 3600.0, "known_seconds": 3600.0, "peak": 9} | r for r in rows],
        )
    spaces = spaces_by_id(api.get("/spaces", params=BORNA, headers=admin))
    local = now.astimezone(BERLIN)
    assert spaces["borna"]["usually_now"] == {
        "level": "full",
        "people": 9.0,
        "weekday": local.weekday(),
        "hour": local.hour,
    }
    assert spaces["grimma"]["usually_now"]["level"] == "quiet"
    assert spaces["grimma"]["usually_now"]["people"] == 2.0
    assert spaces["borna"]["usually_on_day"]["people"] == 9.0  # today's fullest hour
    assert spaces["dorf"]["usually_now"] is None  # nothing known


def test_near_a_postcode_or_town_from_the_gazetteer(engine, tmp_path):
    path = tmp_path / "DE.txt"
    path.write_text(GAZETTEER, encoding="utf-8")
    add_staff(engine)
    with TestClient(create_app(engine, gazetteer=load_gazetteer(path))) as client:
        client.engine = engine
        admin = add_network(client)
        by_code = client.get("/spaces", params={"near": "04668"}, headers=admin).json()
        assert by_code["place"]["name"] == "04668 Grimma"
        assert by_code["spaces"][0]["id"] == "grimma"
        city = client.get("/spaces", params={"near": "leipzig"}, headers=admin).json()
        assert city["place"] == {
            "name": "Leipzig (Kreisfreie Stadt Leipzig)",
            "latitude": pytest.approx(51.33965),
            "longitude": pytest.approx(12.3786),
        }
        assert city["spaces"][0]["id"] == "leipzig-ost"
        far = client.get("/spaces", params={"near": "Goerlitz"}, headers=admin).json()
        assert far["place"]["name"].startswith("Görlitz")
        assert far["spaces"][0]["distance_km"] > 150
        typo = client.get("/spaces", params={"near": "Görlits"}, headers=admin)
        assert typo.status_code == 422
        assert (
            "no place called 'Görlits' (did you mean 'Görlitz (Landkreis Görlitz)'?)" in typo.text
        )


def test_near_a_postcode_or_town_of_a_sites_address_without_a_gazetteer(api):
    admin = add_network(api)
    for near in ("04552", "04552 Borna", "borna", "BORNA"):
        answer = api.get("/spaces", params={"near": near}, headers=admin)
        assert answer.json()["spaces"][0]["id"] == "borna", near
    unknown = api.get("/spaces", params={"near": "Bornaa"}, headers=admin)
    assert unknown.status_code == 422
    assert "no place called 'Bornaa' (did you mean 'Borna'?)" in unknown.text


#: Questions that are refused, and what the answer says.
BAD_QUESTIONS = [
    ({"near": "Borna", "lat": 51.0, "lon": 12.0}, "either a place (near) or"),
    ({"lat": 51.0}, "lat and lon: give both"),
    ({"lat": 91, "lon": 12}, "lat"),
    ({"limit": 0}, "limit"),
    ({"limit": 501}, "limit"),
    ({"near": "x" * 101}, "near"),
    ({"near": "--"}, "near: give a postcode or the name of a town"),
    ({"day": "2020-01-01"}, "day: 2020-01-01 is in the past"),
    ({"day": "01.01.2031"}, "day"),
    ({"day": "2099-01-01"}, "day: at most 730 days ahead"),
]


def test_bad_questions_are_422_naming_what_is_wrong(api):
    admin = add_network(api)
    for params, says in BAD_QUESTIONS:
        answer = api.get("/spaces", params=params, headers=admin)
        assert answer.status_code == 422 and says in answer.text, answer.text


def test_a_member_finds_spaces_and_sees_nothing_of_anyone(api):
    add_network(api)
    add_user(api.engine, Role.MEMBER, username="mia", member_id="mia")
    sense(api.engine, "borna", count=3, high=4, at=datetime.now(UTC))
    mia = as_user(api, "mia")
    answer = api.get("/spaces", params={"near": "Borna"}, headers=mia)
    assert answer.status_code == 200, answer.text
    borna = answer.json()["spaces"][0]
    assert borna["free_now"] == 6
    grimma = answer.json()["spaces"][2]  # no sensor, no booking: all ten, by the bookings
    assert (grimma["id"], grimma["free_now"], grimma["free_now_from"]) == ("grimma", 10, "bookings")
    assert not {"count", "low", "high", "present"} & set(borna)
    assert api.get("/sites", headers=mia).status_code == 403  # the staff's directory is not hers
    assert api.get("/spaces").status_code == 401


def test_the_gazetteer_comes_from_the_settings_and_a_bad_one_is_named(tmp_path):
    good = tmp_path / "DE.txt"
    good.write_text(GAZETTEER, encoding="utf-8")
    config = tmp_path / "hub.toml"
    config.write_text(f'[booking]\ngazetteer = "{good}"\n', encoding="utf-8")
    places = load_hub_settings(config, {}).booking.places()
    assert places is not None and places.find("04552 Borna") == Place(
        "04552 Borna", 51.1227, 12.4972
    )
    bad = tmp_path / "bad.txt"
    dresden = (
        "DE\t01069\tDresden\tSachsen\tSN\t\t00\tKreisfreie Stadt Dresden\t14612\tnorth\t13.7\t4"
    )
    bad.write_text(f"{GAZETTEER}DE\t01067\tDresden\n{dresden}\n", "utf-8")
    settings = load_hub_settings(None, {"HAFEN_HUB__BOOKING__GAZETTEER": str(bad)})
    with pytest.raises(ConfigError) as refused:
        settings.booking.places()
    assert str(refused.value).startswith(f"booking.gazetteer: {bad}: not a GeoNames postal-code")
    assert "line 6: 3 tab-separated fields, not 12" in str(refused.value)
    assert "line 7: 'north' is not a latitude or longitude" in str(refused.value)
    assert settings.check_files() == [str(refused.value)]


def test_weekly_hours_open_when_the_windows_say_past_midnight_too():
    windows = [
        TimeWindow(days=[0, 1, 2, 3, 4], start="08:00", end="13:00"),
        TimeWindow(days=[4], start="14:00", end="24:00"),
        TimeWindow(days=[5], start="20:00", end="02:00"),  # Saturday night into Sunday
    ]
    hours = WeeklyHours.of(windows, [date(2030, 3, 8)])  # a Friday, closed
    monday = datetime(2030, 3, 4, tzinfo=BERLIN)
    for quarter in range(14 * 24 * 4):
        moment = monday + timedelta(minutes=15 * quarter)
        second = moment.hour * 3600 + moment.minute * 60
        expected = any(w.contains(moment.weekday(), second) for w in windows)
        expected = expected and moment.date() != date(2030, 3, 8)
        assert hours.open_at(moment) == expected, moment
    assert hours.parts(date(2030, 3, 4)) == {Part.MORNING}  # until 13:00 only
    assert hours.parts(date(2030, 3, 15)) == {Part.MORNING, Part.AFTERNOON}
    assert hours.parts(date(2030, 3, 8)) == set()  # closed that day
    assert hours.parts(date(2030, 3, 10)) == {Part.MORNING}  # Sunday's small hours
    assert hours.hours(6) == [0, 1] and hours.hours(5) == [20, 21, 22, 23]
