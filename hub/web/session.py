"""Signing in to the dashboard: the API's own token, kept in an HttpOnly cookie.

The cookie is ``SameSite=Strict``, so no other site can make a signed-in browser post a form
here, and the forms check that they were posted from the hub's own pages; pages that need a
user redirect to the sign-in page instead of answering 401.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import Depends, HTTPException, Request, status
from fastapi.responses import RedirectResponse, Response

from hub.auth import STAFF_ROLES, AuthError, Principal, Role
from hub.http.deps import Principals, PublicHosts, Store
from hub.services.scope import Scope

COOKIE = "hafen_session"
PREFIX = "/ui"


class SignInRequired(Exception):
    """The page needs a signed-in user; answered with a redirect to the sign-in page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def anyone(request: Request, principals: Principals, store: Store) -> Principal:
    """The signed-in user of this browser, whatever their role, or a redirect to sign in."""
    token = request.cookies.get(COOKIE)
    if token:
        try:
            return principals.get(store, token)
        except AuthError:
            pass
    query = request.url.query
    raise SignInRequired(f"{request.url.path}?{query}" if query else request.url.path)


def viewer(who: Annotated[Principal, Depends(anyone)]) -> Principal:
    """The signed-in user of a staff page (the dashboard); a member or company admin gets
    403 here, whatever the page would have filtered for them."""
    Scope(who).require_role(*STAFF_ROLES)
    return who


#: The signed-in staff user of a dashboard page.
Viewer = Annotated[Principal, Depends(viewer)]
#: The signed-in user of a page for everyone (a member's or an employer's).
Someone = Annotated[Principal, Depends(anyone)]


def to_sign_in(request: Request, exc: Exception) -> Response:
    """Send a browser that must sign in to the sign-in page (the handler of SignInRequired)."""
    assert isinstance(exc, SignInRequired)
    response = RedirectResponse(f"{PREFIX}/sign-in?next={quote(exc.next_path)}", status_code=303)
    # Only a cookie that was sent and refused is cleared: a link from another site arrives
    # without the (Strict) cookie, and must not sign the browser out.
    if COOKIE in request.cookies:
        response.delete_cookie(COOKIE, path=PREFIX, httponly=True, samesite="strict")
    return response


async def same_origin(request: Request, public_hosts: PublicHosts) -> None:
    """Refuse a form posted from another site (403). ``SameSite`` keeps the cookie from such a
    post, but signing in sets one: a hostile page could sign a browser in as its own user."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None:
        allowed = fetch_site in ("same-origin", "none")
    else:  # plain http and older browsers: Origin on a POST; tools like curl send neither
        origin = request.headers.get("origin")
        allowed = origin is None or _is_ours(request, origin, public_hosts)
    if not allowed:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "a form from another site")


def _is_ours(request: Request, origin: str, public_hosts: frozenset[str]) -> bool:
    """Whether ``origin`` names this hub: as the request addressed it (``Host``, or the
    proxy's ``X-Forwarded-Host``), or as configured (``hafen hub serve --public-url``). The
    scheme is not compared: behind a TLS proxy the hub itself is reached over http."""
    host = urlsplit(origin).netloc.lower()
    ours = {request.headers.get("host"), request.headers.get("x-forwarded-host")}
    ours |= public_hosts
    return bool(host) and host in {h.lower() for h in ours if h}


SameOrigin = Depends(same_origin)


def set_session(response: Response, token: str, secure: bool, max_age: int) -> None:
    response.set_cookie(
        COOKIE,
        token,
        max_age=max_age,
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=secure,
    )


def member_pages(who: Principal) -> bool:
    """Whether ``who`` has a member's own pages (``/ui/me``): a member, or a company admin
    who is a member of the network too."""
    return who.role in (Role.MEMBER, Role.COMPANY_ADMIN) and who.member_id is not None


def employer_pages(who: Principal) -> bool:
    """Whether ``who`` has an employer's pages (``/ui/company``)."""
    return who.role == Role.COMPANY_ADMIN and who.company_id is not None


def home_of(who: Principal) -> str:
    """Where ``who`` starts: staff the overview, a company admin their staff, a member their
    own page (someone with neither, an admin of a company since removed, the member page,
    which says what is missing)."""
    if who.role in STAFF_ROLES:
        return f"{PREFIX}/"
    if employer_pages(who):
        return f"{PREFIX}/company"
    return f"{PREFIX}/me"


def _area(path: str, area: str) -> bool:
    """Whether ``path`` is the page ``area`` or one under it (``/ui/me`` is not ``/ui/mean``)."""
    return path == area or path.startswith((f"{area}/", f"{area}?"))


def may_reach(who: Principal, path: str) -> bool:
    """Whether ``who``'s role has the page at ``path`` (the pages check again, this only
    chooses where to land): members their own pages, company admins theirs, staff the rest."""
    if _area(path, f"{PREFIX}/me"):
        return member_pages(who)
    if _area(path, f"{PREFIX}/company"):
        return employer_pages(who)
    if _area(path, f"{PREFIX}/invitation"):
        return True
    return who.role in STAFF_ROLES


def landing(who: Principal, next_path: str | None) -> str:
    """Where to go after signing in: the page asked for if ``who`` has it, else their home
    (a member who followed a link to a staff page lands on their own, not on a 403)."""
    wanted = safe_next(next_path)
    return wanted if wanted != f"{PREFIX}/" and may_reach(who, wanted) else home_of(who)


def safe_next(path: str | None) -> str:
    """Where to go after signing in: only a page of the dashboard itself (no open redirect)."""
    if path and path.startswith(f"{PREFIX}/") and not path.startswith("//") and "\\" not in path:
        return path
    return f"{PREFIX}/"
