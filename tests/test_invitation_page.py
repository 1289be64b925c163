"""The page an invitation link leads to (issue 16, item 7), over HTTP on SQLite and
PostgreSQL: the link from a real mail (aiosmtpd) asks for a password twice, signs the person
in and lands them on their home; a spent link is a 410 page, an unknown one a 404 page,
neither saying whose; in German when the browser asks for it."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from hub.auth import Role
from tests.support.hub import add_staff, add_user, api_client, as_user
from tests.support.pages import CROSS_SITE
from tests.support.sites import add_sites
from tests.support.smtp import smtp_server
from tests.support.waiting import wait_for

NEW_PASSWORD = "my own long password"


@pytest.fixture
def mail_api(engine):
    """The hub sending mail through a real SMTP server; yields (api, inbox)."""
    add_staff(engine)
    with smtp_server() as server, api_client(engine, mail=server.mailer()) as api:
        yield api, server.inbox


def browser(api) -> TestClient:
    return TestClient(api.app, headers={"Accept-Language": "de-DE,de;q=0.9"})


def test_the_mailed_link_sets_a_password_and_signs_the_member_in(mail_api):
    api, inbox = mail_api
    admin = add_sites(api)
    member = {"id": "anna", "name": "Anna Schmidt", "email": "anna@example.org"}
    api.post("/members", json=member, headers=admin)
    assert api.post("/members/anna/invitation", headers=admin).status_code == 201
    assert wait_for(lambda: len(inbox.messages) == 1, 10)
    path = inbox.link().removeprefix("http://testserver")
    assert path.startswith("/ui/invitation/hfi_")
    anna = browser(api)
    form = anna.get(path)
    assert form.status_code == 200 and form.headers["cache-control"] == "no-store"
    assert "Passwort festlegen" in form.text and "<strong>anna@example.org</strong>" in form.text
    assert 'autocomplete="new-password"' in form.text

    short = anna.post(path, data={"password": "short", "again": "short"})
    assert short.status_code == 422 and "mindestens 10 Zeichen" in short.text
    assert 'value="short"' not in short.text  # a password is never written back
    differ = anna.post(path, data={"password": NEW_PASSWORD, "again": NEW_PASSWORD + "!"})
    assert differ.status_code == 422 and "stimmen nicht überein" in differ.text
    refused = anna.post(
        path, data={"password": NEW_PASSWORD, "again": NEW_PASSWORD}, headers=CROSS_SITE
    )
    assert refused.status_code == 403

    done = anna.post(
        path, data={"password": NEW_PASSWORD, "again": NEW_PASSWORD}, follow_redirects=False
    )
    assert done.status_code == 303 and done.headers["location"] == "/ui/me"
    for flag in ("HttpOnly", "SameSite=strict", "Path=/ui"):
        assert flag.lower() in done.headers["set-cookie"].lower()
    home = anna.get("/ui/me")
    assert home.status_code == 200 and "Hallo, Anna Schmidt" in home.text
    as_user(api, "anna@example.org", NEW_PASSWORD)  # and she signs in with it from now on

    # Used: a 410 page that says so and points to signing in; a link never made: 404 (each
    # a bad try of this client: five are allowed in a quarter of an hour).
    spent = browser(api).get(path)
    assert spent.status_code == 410 and "schon benutzt oder ist abgelaufen" in spent.text
    assert "anna" not in spent.text and 'href="/ui/sign-in"' in spent.text
    again = anna.post(path, data={"password": NEW_PASSWORD, "again": NEW_PASSWORD})
    assert again.status_code == 410
    unknown = browser(api).get("/ui/invitation/hfi_" + "x" * 43)
    assert unknown.status_code == 404 and "Diesen Einladungslink gibt es nicht" in unknown.text
    english = TestClient(api.app).get("/ui/invitation/hfi_nothing")
    assert english.status_code == 404 and "No such invitation link" in english.text


def test_a_company_admin_lands_on_their_company_and_one_who_is_a_member_too_on_both(api):
    admin = add_sites(api)
    api.put(
        "/companies/acme", json={"id": "acme", "name": "ACME", "sites": ["borna"]}, headers=admin
    )
    body = {"email": "cora@acme.example", "name": "Cora"}
    link = api.post("/companies/acme/admins", json=body, headers=admin).json()["link"]
    cora = browser(api)
    path = link.removeprefix("http://testserver")
    done = cora.post(
        path, data={"password": NEW_PASSWORD, "again": NEW_PASSWORD}, follow_redirects=False
    )
    assert done.headers["location"] == "/ui/company"
    staff = cora.get("/ui/company")
    assert staff.status_code == 200 and "Mitarbeitende von ACME" in staff.text
    assert 'href="/ui/me"' not in staff.text  # she is no member: no member's pages
    assert cora.get("/ui/me").status_code == 403
    # A company admin who is a member of the network too has both, linked from each other.
    api.post("/members", json={"id": "carl", "name": "Carl"}, headers=admin)
    add_user(api.engine, Role.COMPANY_ADMIN, username="carl", company_id="acme", member_id="carl")
    carl = browser(api)
    signed = carl.post(
        "/ui/sign-in",
        data={"username": "carl", "password": "a long passphrase"},
        follow_redirects=False,
    )
    assert signed.headers["location"] == "/ui/company"
    assert ">Meine Mitgliedschaft</a>" in carl.get("/ui/company").text
    home = carl.get("/ui/me")
    assert home.status_code == 200 and 'href="/ui/company"' in home.text


def test_guessing_links_is_throttled(api):
    guesser = browser(api)
    answers = [guesser.get(f"/ui/invitation/hfi_guess{n}").status_code for n in range(40)]
    assert answers[0] == 404 and answers[-1] == 429
    last = guesser.get("/ui/invitation/hfi_guess")
    assert "Zu viele Versuche" in last.text and int(last.headers["retry-after"]) > 0
