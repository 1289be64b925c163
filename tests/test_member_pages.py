"""A member's own pages (issue 16, item 7) over HTTP, on SQLite and PostgreSQL: their home,
cards (a lost one blocked after a second step), visits on their sites' clock, calendar feed
and a booking's .ics; nothing of anyone else's, no staff or employer page; in German when
the browser asks for it."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_time
from sqlalchemy import insert, select

from hub import db
from hub.auth import Role
from hub.services.self_service import card_id
from tests.support.edge import CARD_KEY
from tests.support.hub import add_staff, add_user, api_client
from tests.support.pages import CROSS_SITE, field, signed_in
from tests.support.sites import add_sites

CARDS = {"anna": ["04A1B2C3D4E5F6", "04A1B2C3D4E5F7"], "bert": ["04B1B2C3D4E5F6"]}


@pytest.fixture
def members(engine):
    """The hub with anna (plan flex, two cards) and bert (acme's staff, one card), each a
    member's user; yields the API's client."""
    add_staff(engine)
    with api_client(engine, CARD_KEY) as api:
        admin = add_sites(api)
        api.post("/plans", json={"id": "flex"}, headers=admin)
        body = {"id": "acme", "name": "ACME GmbH", "plan": "flex", "sites": ["borna"]}
        api.put("/companies/acme", json=body, headers=admin)
        for member, cards in CARDS.items():
            body = {"id": member, "name": f"{member.title()} Example", "email": f"{member}@ex.org"}
            api.post("/members", json=body, headers=admin)
            for uid in cards:
                assert api.post(f"/members/{member}/cards", json={"uid": uid}, headers=admin)
            add_user(engine, Role.MEMBER, username=member, member_id=member)
        api.post("/members/anna/grants", json={"plan": "flex"}, headers=admin)
        api.put("/members/bert/company", json={"company": "acme"}, headers=admin)
        yield api


def card_ids(api, member: str) -> list[str]:
    with api.engine.connect() as conn:
        k = db.cards.c
        hashes = conn.scalars(select(k.hash).where(k.member_id == member)).all()
    return sorted(card_id(h) for h in hashes)


def visit(engine, member: str, site: str, day: date, first: datetime) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(db.visits).values(
                site=site, day=day.isoformat(), member=member, company=None,
                first_at=first, last_at=first + timedelta(hours=3), entries=2,
            )
        )  # fmt: skip


def test_a_member_lands_on_their_home_and_sees_only_their_own(members):
    anna = signed_in(members, "anna")
    assert anna.landed == "/ui/me"
    home = anna.get("/ui/me")
    assert home.status_code == 200 and home.headers["cache-control"] == "no-store"
    assert "Hello, Anna Example" in home.text
    assert '<dd data-field="plans">flex</dd>' in home.text
    assert '<dd data-field="company">none</dd>' in home.text
    assert '<a href="/ui/me" aria-current="page">Home</a>' in home.text
    assert "/ui/fleet" not in home.text and "/ui/company" not in home.text  # not her pages
    bert_home = signed_in(members, "bert").get("/ui/me").text
    assert '<dd data-field="company">ACME GmbH</dd>' in bert_home

    cards = anna.get("/ui/me/cards").text
    assert re.findall(r'data-card="(\w+)" data-state="active"', cards) == card_ids(members, "anna")
    for uid in CARDS["anna"]:  # never the card's number
        assert uid not in cards and uid.lower() not in cards

    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    first = datetime.combine(yesterday, datetime.min.time(), tzinfo=UTC) + timedelta(hours=7)
    visit(members.engine, "anna", "borna", yesterday, first)
    visit(members.engine, "bert", "leipzig-ost", yesterday, first)
    visits = anna.get("/ui/me/visits").text
    assert re.findall(r'data-site="([\w-]+)" data-day', visits) == ["borna"]
    on_site = format_time(first, "short", tzinfo=ZoneInfo("Europe/Berlin"), locale="en")
    assert f">{on_site}</time>" in visits and "2 taps" in visits

    # Another member's card, staff pages and the employer's pages are not hers.
    [bert_card] = card_ids(members, "bert")
    assert anna.get(f"/ui/me/cards/{bert_card}/lost").status_code == 404
    assert anna.post(f"/ui/me/cards/{bert_card}/lost").status_code == 404
    for path in ("/ui/company", "/ui/company/use", "/ui/company/staff/new", "/ui/fleet"):
        assert anna.get(path).status_code == 403, path
    assert anna.get("/ui/", follow_redirects=False).headers["location"] == "/ui/me"
    # Staff have no member's pages: theirs are the dashboard's.
    nadia = signed_in(members, "nadia")
    assert nadia.landed == "/ui/"
    assert nadia.get("/ui/me").status_code == 403
    assert nadia.get("/ui/me/cards").status_code == 403


def test_a_member_who_follows_a_link_to_a_staff_page_lands_on_their_home(members):
    client = signed_in(members, "anna")
    for asked, landed in (("/ui/fleet", "/ui/me"), ("/ui/me/cards", "/ui/me/cards")):
        reply = client.post(
            "/ui/sign-in",
            data={"username": "anna", "password": "a long passphrase", "next": asked},
            follow_redirects=False,
        )
        assert reply.headers["location"] == landed


def test_reporting_a_card_lost_asks_first_then_blocks_it_at_once(members):
    anna = signed_in(members, "anna", lang="de")
    lost, kept = card_ids(members, "anna")
    confirm = anna.get(f"/ui/me/cards/{lost}/lost")
    assert confirm.status_code == 200
    assert f'action="/ui/me/cards/{lost}/lost"' in confirm.text
    assert f"Karte {lost} sperren" in confirm.text
    assert card_ids(members, "anna") == [lost, kept]
    with members.engine.connect() as conn:
        assert not any(conn.scalars(select(db.cards.c.revoked)))  # asking changed nothing
    refused = anna.post(f"/ui/me/cards/{lost}/lost", headers=CROSS_SITE)
    assert refused.status_code == 403
    done = anna.post(f"/ui/me/cards/{lost}/lost", follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == f"/ui/me/cards?lost={lost}"
    page = anna.get(done.headers["location"]).text
    assert f"Karte {lost} ist gesperrt" in page
    assert f'data-card="{lost}" data-state="blocked"' in page
    assert f'data-card="{kept}" data-state="active"' in page
    with members.engine.connect() as conn:
        revoked = {
            card_id(h): r for h, r in conn.execute(select(db.cards.c.hash, db.cards.c.revoked))
        }
    assert [c for c, r in revoked.items() if r] == [lost]  # hers, that one, nobody else's
    # Reported again: nothing more happens, and the page says it is blocked already.
    assert "bereits gesperrt" in anna.get(f"/ui/me/cards/{lost}/lost").text
    # A made-up "lost" in the address names nothing.
    assert 'data-lost="' not in anna.get(f"/ui/me/cards?lost={kept}").text


def test_the_calendar_feed_is_shown_once_replaced_and_ended(members):
    anna = signed_in(members, "anna")
    assert 'data-feed="off"' in anna.get("/ui/me/calendar").text
    assert anna.post("/ui/me/calendar", headers=CROSS_SITE).status_code == 403
    made = anna.post("/ui/me/calendar")
    assert made.status_code == 200
    url = field(made.text, "feed-url")
    assert re.fullmatch(r"http://testserver/calendar/hfc_[\w-]+\.ics", url)
    assert f'href="webcal://{url.removeprefix("http://")}"' in made.text
    feed = members.get(url.removeprefix("http://testserver"))
    assert feed.status_code == 200 and feed.text.startswith("BEGIN:VCALENDAR")
    shown = anna.get("/ui/me/calendar").text  # on, and its address not shown again
    assert 'data-feed="on"' in shown and url not in shown
    newer = field(anna.post("/ui/me/calendar").text, "feed-url")
    assert newer != url
    assert members.get(url.removeprefix("http://testserver")).status_code == 404
    assert "End the feed?" not in (confirm := anna.get("/ui/me/calendar/end").text)
    assert 'action="/ui/me/calendar/end"' in confirm
    ended = anna.post("/ui/me/calendar/end", follow_redirects=False)
    assert ended.headers["location"] == "/ui/me/calendar"
    assert members.get(newer.removeprefix("http://testserver")).status_code == 404
    assert 'data-feed="off"' in anna.get("/ui/me/calendar").text


def test_a_bookings_ics_is_served_to_its_member_alone(members):
    day = datetime.now(UTC).date() + timedelta(days=2)
    start = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=8)
    with members.engine.begin() as conn:
        booking = conn.execute(
            insert(db.bookings).returning(db.bookings.c.id).values(
                member_id="anna", site_id="borna", kind="desk", part="day", day=day,
                starts_at=start, ends_at=start + timedelta(hours=8), created_at=start,
            )
        ).scalar_one()  # fmt: skip
    anna, bert = signed_in(members, "anna"), signed_in(members, "bert")
    ics = anna.get(f"/ui/me/bookings/{booking}.ics")
    assert ics.status_code == 200 and ics.headers["content-type"].startswith("text/calendar")
    assert f'filename="booking-{booking}.ics"' in ics.headers["content-disposition"]
    assert "SUMMARY:Desk at Borna" in ics.text and f"UID:booking-{booking}@testserver" in ics.text
    assert bert.get(f"/ui/me/bookings/{booking}.ics").status_code == 404
    assert anna.get(f"/ui/me/bookings/{booking + 1}.ics").status_code == 404
    assert anna.get("/ui/me/bookings/0.ics").status_code == 422  # a file: the API's answer
