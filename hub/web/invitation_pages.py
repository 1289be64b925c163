"""The page an invitation link leads to (hub.services.invitations.LINK_PATH): the invited
person chooses their password, twice, and is signed in, landing on their own home.

A link that was used or has expired says so (410), an unknown one says that (404); neither
says whose it was, and the page shows the user name only for a link that is still good (the
invitation's mail names it too). Tries of bad links are throttled per client, as the API's
are (the same counter).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Path, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from hub.auth import MIN_PASSWORD_LENGTH, SESSION
from hub.http.deps import ClientAddress, LinkGuesses, Principals, Store
from hub.services import invitations, users
from hub.services.errors import Gone, NotFound
from hub.throttle import Throttled
from hub.web.i18n import translator
from hub.web.session import COOKIE, PREFIX, SameOrigin, home_of, set_session
from hub.web.templating import form_page, page

router = APIRouter(prefix=PREFIX, include_in_schema=False)
#: A link's token, as the hub makes them (``hfi_`` and 43 characters), with room to spare.
Token = Annotated[str, Path(min_length=1, max_length=100)]
#: The longest password taken (as the API's ``PasswordIn``).
MAX_PASSWORD = 200


@router.get("/invitation/{token}")
def invitation_page(
    request: Request, token: Token, store: Store, throttle: LinkGuesses, client: ClientAddress
) -> HTMLResponse:
    """The form for the new password, or why the link cannot be used."""
    try:
        username = invitations.open_invitation(store, throttle, token, client)
    except (NotFound, Gone, Throttled) as exc:
        return _unusable(request, exc)
    return _form(request, username)


@router.post("/invitation/{token}", dependencies=[SameOrigin])
def accept_invitation(
    request: Request,
    token: Token,
    store: Store,
    throttle: LinkGuesses,
    client: ClientAddress,
    principals: Principals,
    password: Annotated[str, Form(max_length=MAX_PASSWORD)] = "",
    again: Annotated[str, Form(max_length=MAX_PASSWORD)] = "",
) -> Response:
    """Set the password and sign in; a password too short or not typed the same twice is
    asked for again (the link still works). Passwords are never written back into the page."""
    _ = translator(request)
    error = None
    if len(password) < MIN_PASSWORD_LENGTH:
        error = _("Your password needs at least %(n)s characters.") % {"n": MIN_PASSWORD_LENGTH}
    elif password != again:
        error = _("The two passwords are not the same: type them again.")
    try:
        if error is not None:
            username = invitations.open_invitation(store, throttle, token, client)
            return _form(request, username, error)
        accepted = invitations.accept_invitation(store, throttle, token, password, client)
    except (NotFound, Gone, Throttled) as exc:
        return _unusable(request, exc)
    principals.clear()  # the user's earlier sessions ended
    if (previous := request.cookies.get(COOKIE)) is not None:
        users.sign_out(store, previous)  # someone else signed in on this browser: no longer
    who = principals.get(store, accepted.access_token)
    redirect = RedirectResponse(home_of(who), status_code=status.HTTP_303_SEE_OTHER)
    secure = request.url.scheme == "https"
    set_session(redirect, accepted.access_token, secure, int(SESSION.total_seconds()))
    return redirect


def _form(request: Request, username: str, error: str | None = None) -> HTMLResponse:
    return form_page(
        request,
        "invitation.html",
        None,
        error,
        username=username,
        min_length=MIN_PASSWORD_LENGTH,
        max_length=MAX_PASSWORD,
    )


def _unusable(request: Request, exc: NotFound | Gone | Throttled) -> HTMLResponse:
    """Why the link cannot be used, in the visitor's language, without saying whose it is."""
    if isinstance(exc, Throttled):
        kind, code = "throttled", status.HTTP_429_TOO_MANY_REQUESTS
    elif isinstance(exc, Gone):
        kind, code = "spent", status.HTTP_410_GONE
    else:
        kind, code = "unknown", status.HTTP_404_NOT_FOUND
    minutes = -(-exc.seconds // 60) if isinstance(exc, Throttled) else 0
    response = page(request, "invitation_unusable.html", None, kind=kind, minutes=minutes)
    response.status_code = code
    if isinstance(exc, Throttled):
        response.headers["Retry-After"] = str(exc.seconds)
    return response
