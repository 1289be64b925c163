"""Invitations: staff invite members and network admins invite company admins; the invited
set their password by the link (no sign-in needed for that)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, status

from hub.http.deps import (
    Admin,
    Caller,
    ClientAddress,
    LinkGuesses,
    Principals,
    PublicUrl,
    SendsMail,
    Store,
)
from hub.services import invitations
from hub.services.invitations import (
    Accepted,
    CompanyAdminIn,
    InvitationOut,
    Links,
    PasswordIn,
)
from hub.throttle import Throttled

router = APIRouter(tags=["invitations"])

#: A link's token, as the hub makes them (``hfi_`` and 43 characters), with room to spare.
Token = Annotated[str, Path(min_length=1, max_length=100)]


@router.post(
    "/members/{member}/invitation",
    response_model=InvitationOut,
    status_code=status.HTTP_201_CREATED,
)
def invite_member(
    member: str, store: Store, who: Caller, base_url: PublicUrl, sends_mail: SendsMail
) -> InvitationOut:
    """Invite a member to sign in: a one-time link (7 days) to set their password, mailed to
    them when the hub sends mail, else in this answer to hand over. A new invitation ends the
    member's earlier unused links. Network admins invite anyone, operators the members whose
    access reaches one of their sites."""
    return invitations.invite_member(store, who, member, Links(base_url, sends_mail))


@router.post(
    "/companies/{company}/admins",
    response_model=InvitationOut,
    status_code=status.HTTP_201_CREATED,
)
def invite_company_admin(
    company: str,
    body: CompanyAdminIn,
    store: Store,
    who: Admin,
    base_url: PublicUrl,
    sends_mail: SendsMail,
) -> InvitationOut:
    """Invite someone (by e-mail address, their user name) to look after a company's staff."""
    return invitations.invite_company_admin(store, who, company, body, Links(base_url, sends_mail))


@router.post("/auth/invitations/{token}", response_model=Accepted)
def accept_invitation(
    token: Token,
    body: PasswordIn,
    store: Store,
    throttle: LinkGuesses,
    client: ClientAddress,
    principals: Principals,
) -> Accepted:
    """Set your password with the link you were sent, and be signed in (12 hours). A link
    works once and for 7 days: 410 after, 404 for one that never was; 429 with
    ``Retry-After`` after repeated bad links from one address."""
    try:
        accepted = invitations.accept_invitation(store, throttle, token, body.password, client)
    except Throttled as exc:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS, str(exc), headers={"Retry-After": str(exc.seconds)}
        ) from None
    principals.clear()  # the user's earlier sessions ended
    return accepted
