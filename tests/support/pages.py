"""The member's and employer's pages over HTTP: a browser's session of one user, signed in
through the sign-in form (the session cookie), beside the API's test client."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.support.hub import PASSWORD

#: What a browser sends with a form posted from another site (SameOrigin refuses it).
CROSS_SITE = {"sec-fetch-site": "cross-site"}


def signed_in(api: TestClient, username: str, password: str = PASSWORD, lang: str = "en"):
    """A new browser session on ``api``'s hub, signed in as ``username``, speaking ``lang``;
    the sign-in's answer is at hand as ``client.landed`` (where the user was sent)."""
    client = TestClient(api.app, headers={"Accept-Language": lang})
    reply = client.post(
        "/ui/sign-in",
        data={"username": username, "password": password},
        follow_redirects=False,
    )
    assert reply.status_code == 303, reply.text
    client.landed = reply.headers["location"]
    return client


def field(html: str, name: str) -> str:
    """The value of the input with id ``name`` in a page."""
    found = re.search(rf'id="{name}"[^>]*value="([^"]*)"', html)
    assert found is not None, html
    return found.group(1)
