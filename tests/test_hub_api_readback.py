"""What the walk-through of issue 16 found: a plan, company or grant naming a site the network
does not have is refused and changes nothing, and everything that can be made through the API
can be read back from it, one and in lists. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from tests.support.booking import at, today
from tests.support.hub import as_user
from tests.support.sites import add_sites

#: A day guest's time a week ahead (one in the past is refused).
GUEST_DAY = today() + timedelta(days=7)
DAY = {"starts_at": at(GUEST_DAY, "08:00"), "ends_at": at(GUEST_DAY, "18:00")}


def test_a_plan_naming_a_site_that_does_not_exist_is_refused_with_the_nearest_one(api):
    admin = add_sites(api)  # borna, leipzig-ost
    typo = api.post("/plans", json={"id": "flex", "sites": ["leipzig-ots"]}, headers=admin)
    assert typo.status_code == 422
    assert "'leipzig-ots' (did you mean 'leipzig-ost'?)" in typo.text
    assert api.get("/plans/flex", headers=admin).status_code == 404  # nothing was made
    assert api.post("/plans", json={"id": "flex", "sites": ["borna"]}, headers=admin).is_success
    change = api.put(
        "/plans/flex", json={"id": "flex", "sites": ["borna", "nowhere"]}, headers=admin
    )
    assert change.status_code == 422 and "nowhere" in change.text
    assert api.get("/plans/flex", headers=admin).json()["sites"] == ["borna"]  # unchanged


def test_a_company_or_grant_naming_a_site_that_does_not_exist_is_refused(api):
    admin = add_sites(api)
    body = {"id": "acme", "name": "Acme", "sites": ["borna", "bornaa"]}
    refused = api.put("/companies/acme", json=body, headers=admin)
    assert refused.status_code == 422 and "did you mean 'borna'" in refused.text
    assert api.get("/companies/acme", headers=admin).status_code == 404
    assert api.post("/members", json={"id": "anna", "name": "Anna"}, headers=admin).is_success
    grant = api.post("/members/anna/grants", json={"sites": ["ghost"]}, headers=admin)
    assert grant.status_code == 422 and "ghost" in grant.text


def test_plans_companies_members_and_bookings_read_back_as_made(api):
    admin = add_sites(api)
    plans = [
        {
            "id": "flex",
            "sites": ["borna"],
            "windows": None,
            "days_per_month": 8,
            "access": "booked",
        },
        {
            "id": "full",
            "sites": None,
            "windows": None,
            "days_per_month": None,
            "access": "standing",
        },
    ]
    for plan in plans:
        assert api.post("/plans", json=plan, headers=admin).status_code == 201
    assert api.get("/plans", headers=admin).json() == plans
    assert api.get("/plans", params={"after": "flex"}, headers=admin).json() == plans[1:]
    assert api.get("/plans/full", headers=admin).json() == plans[1]

    company = {
        "id": "acme",
        "name": "Acme GmbH",
        "plan": "flex",
        "sites": ["leipzig-ost"],
        "days_per_person": 4,
    }
    assert api.put("/companies/acme", json=company, headers=admin).is_success
    assert api.get("/companies", headers=admin).json() == [company]
    assert api.get("/companies/acme", headers=admin).json() == company
    assert api.get("/companies/other", headers=admin).status_code == 404

    member = {"id": "anna", "name": "Anna", "email": "anna@example.org", "blocked": False}
    assert api.post("/members", json=member, headers=admin).status_code == 201
    assert api.put("/members/anna/company", json={"company": "acme"}, headers=admin).is_success
    assert api.get("/members/anna", headers=admin).json() == {**member, "company": "acme"}
    assert api.get("/members/nobody", headers=admin).status_code == 404

    made = api.post("/sites/borna/bookings", json={"member": "anna", **DAY}, headers=admin)
    assert made.status_code == 201
    booking = made.json()
    assert api.get(f"/bookings/{booking['id']}", headers=admin).json() == booking
    api.delete(f"/bookings/{booking['id']}", headers=admin)
    assert api.get(f"/bookings/{booking['id']}", headers=admin).json()["cancelled"] is True


def test_an_operator_reads_bookings_at_their_site_only_and_no_plans(api):
    admin = add_sites(api)
    assert api.post("/members", json={"id": "anna", "name": "Anna"}, headers=admin).is_success
    at_borna = api.post("/sites/borna/bookings", json={"member": "anna", **DAY}, headers=admin)
    at_leipzig = api.post(
        "/sites/leipzig-ost/bookings", json={"member": "anna", **DAY}, headers=admin
    )
    olga = as_user(api, "olga")  # operator of leipzig-ost
    assert api.get(f"/bookings/{at_leipzig.json()['id']}", headers=olga).status_code == 200
    # Another site's booking answers as one that does not exist.
    assert api.get(f"/bookings/{at_borna.json()['id']}", headers=olga).status_code == 404
    for path in ("/plans", "/companies", "/members/anna"):
        assert api.get(path, headers=olga).status_code == 403
