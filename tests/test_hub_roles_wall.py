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

#: What is not staff's: anyone's own account and tokens, what needs no sign-in, a member's own
#: things and calendar feed, a company admin's own staff and use, finding a space
#: (tests/test_hub_self_service.py, test_hub_staff.py and test_hub_calendars.py walk those),
#: and what doors ask with their own signed requests, not a user's token (releases to
#: download: tests/test_release_downloads.py).
NOT_STAFF = re.compile(r"^/(auth/|health|enrol|me/|calendar/|company/|spaces|device/)")


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
    assert signed_in.headers["location"] == "/ui/me"  # their own home
    for page in ("/ui/sites/borna", "/ui/fleet", "/ui/reports", "/ui/companies/acme/statement"):
        assert api.get(page, follow_redirects=False).status_code == 403, page
    # The dashboard's root (where the bar's name leads) sends them home instead.
    root = api.get("/ui/", follow_redirects=False)
    assert root.status_code == 303 and root.headers["location"] == "/ui/me"


@pytest.mark.parametrize("role", [Role.MEMBER, Role.COMPANY_ADMIN])
def test_the_staff_rules_show_a_member_or_company_admin_nothing(role):
    scope = Scope(Principal(1, "x", role, frozenset({"borna"})))
    assert scope.sites == frozenset() and not scope.may_see("borna")
    assert not scope.sees_people and not scope.installs_devices
