"""The small network of sites the hub's API tests share: Leipzig-Ost and Borna."""

from __future__ import annotations

import httpx

from tests.support.hub import as_user

SITES = ("leipzig-ost", "borna")


def add_sites(client: httpx.Client) -> dict[str, str]:
    """Add the sites through the API as nadia, the network admin; returns her header."""
    admin = as_user(client, "nadia")
    for site in SITES:
        response = client.post("/sites", json={"id": site, "name": site.title()}, headers=admin)
        assert response.status_code == 201, response.text
    return admin
