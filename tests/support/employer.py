"""A commuter harbour for the employer's booking tests: spaces of the Leipzig region with
places, desks and a room, a company that books two of them, and its staff; set up through the
API as nadia, the network admin, on a TestClient or on a served hub (httpx)."""

from __future__ import annotations

from datetime import date, timedelta

import httpx

from tests.support.booking import today

#: Borna (2 desks and a studio), Leipzig-Ost (5 desks), Grimma (3 desks, which the company
#: does not book); each always open, at its place.
SPACES: list[dict[str, object]] = [
    {
        "id": "borna",
        "name": "Hafen Borna",
        "latitude": 51.1167,
        "longitude": 12.4969,
        "address": "Markt 1, 04552 Borna",
        "desks": 2,
    },
    {
        "id": "leipzig-ost",
        "name": "Hafen Leipzig-Ost",
        "latitude": 51.3435,
        "longitude": 12.4130,
        "address": "Eisenbahnstraße 1, 04315 Leipzig",
        "desks": 5,
    },
    {
        "id": "grimma",
        "name": "Hafen Grimma",
        "latitude": 51.2386,
        "longitude": 12.7253,
        "address": "Markt 5, 04668 Grimma",
        "desks": 3,
    },
]
#: ACME books Borna and Leipzig-Ost, one desk day a month for each person.
ACME = {"id": "acme", "name": "ACME GmbH", "sites": ["borna", "leipzig-ost"], "days_per_person": 1}


def add_harbour(client: httpx.Client, admin: dict[str, str]) -> None:
    """The spaces of ``SPACES`` (Borna with a studio for six) and ACME, made through the API."""
    for space in SPACES:
        answer = client.post("/sites", json=space, headers=admin)
        assert answer.status_code == 201, answer.text
    studio = {"name": "Studio", "seats": 6}
    assert client.put("/sites/borna/rooms/studio", json=studio, headers=admin).is_success
    assert client.put("/companies/acme", json=ACME, headers=admin).is_success


def add_staff_member(
    client: httpx.Client, admin: dict[str, str], member: str, name: str, company: str = "acme"
) -> None:
    """A member of the network on ``company``'s staff (no account of their own)."""
    body = {"id": member, "name": name, "email": f"{member}@example.org"}
    assert client.post("/members", json=body, headers=admin).status_code == 201
    employed = client.put(f"/members/{member}/company", json={"company": company}, headers=admin)
    assert employed.status_code == 200, employed.text


def days_in_one_month(count: int) -> list[date]:
    """``count`` days from tomorrow on (in Berlin), all in one month: an allowance of days a
    month counts them together."""
    first = today() + timedelta(days=1)
    if (first + timedelta(days=count)).month != first.month:
        first = (first.replace(day=1) + timedelta(days=32)).replace(day=1)
    return [first + timedelta(days=i) for i in range(count)]
