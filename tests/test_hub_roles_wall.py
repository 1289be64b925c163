"""Members and company admins are people who use the network, not staff: every staff endpoint
and dashboard page refuses them before any staff rule is asked (hub.http.deps.Caller,
hub.web.session.viewer), and the staff rules themselves would show them no site and nobody
(hub.services.scope: the default is to see nothing)."""

from __future__ import annotations

import re

import pytest

from hub.auth import Principal, Role
from hub.services.scope import Scope
from tests.support.hub import PASSWORD, add_user, as_user
from tests.support.sites import add_sites

#: What anyone signed in may reach: their own account and tokens, the network's spaces (which
#: show nobody); and what needs no sign-in.
NOT_STAFF = re.compile(r"^/(auth/|health|enrol|spaces$)")


def _staff_routes(app) -> list[tuple[str, str]]:
    """Every operation the API documents (OpenAPI: what a client can find), ids filled in."""
    routes: list[tuple[str, str]] = []
    for path, operations in app.openapi()["paths"].items():
        if not NOT_STAFF.match(path):
            filled = re.sub(r"\{[^}]+\}", "1", path)
            routes.extend((method.upper(), filled) for method in sorted(operations))
    return routes


@pytest.mark.parametrize("role", [Role.MEMBER, Role.COMPANY_ADMIN])
def test_members_and_company_admins_reach_no_staff_endpoint(api, role):
    add_sites(api)
    who = {"member_id": "mia"} if role == Role.MEMBER else {"company_id": "acme"}
    headers = as_user(api, add_user(api.engine, role, username="someone", **who))
    routes = _staff_routes(api.app)
    assert len(routes) > 40  # the whole API, not a handful
    for method, path in routes:
        answer = api.request(method, path, headers=headers)
        assert answer.status_code == 403, (method, path, answer.status_code, answer.text)
    me = api.get("/auth/me", headers=headers).json()
    assert me["role"] == role.value
    assert me["member"] == who.get("member_id") and me["company"] == who.get("company_id")


def test_a_member_gets_no_dashboard_page(api):
    add_sites(api)
    add_user(api.engine, Role.MEMBER, username="mia", member_id="mia")
    signed_in = api.post(
        "/ui/sign-in",
        data={"username": "mia", "password": PASSWORD},
        follow_redirects=False,
    )
    assert signed_in.status_code in (302, 303), signed_in.text
    for page in ("/ui/", "/ui/sites/borna", "/ui/fleet"):
        assert api.get(page, follow_redirects=False).status_code == 403, page


@pytest.mark.parametrize("role", [Role.MEMBER, Role.COMPANY_ADMIN])
def test_the_staff_rules_show_a_member_or_company_admin_nothing(role):
    scope = Scope(Principal(1, "x", role, frozenset({"borna"})))
    assert scope.sites == frozenset() and not scope.may_see("borna")
    assert not scope.sees_people and not scope.installs_devices
