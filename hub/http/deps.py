"""The FastAPI dependencies every route may ask for: the store, the access-list publisher, the
card key, the signed-in caller and the hub's process-wide helpers.

``install`` puts them on the application; the functions below are the only code that reads
``app.state``, so a route says what it needs in its signature (``store: Store``) and a test or
another adapter can see it there.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, FastAPI, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine

from hub.access_lists import AclPublisher
from hub.auth import STAFF_ROLES, AuthError, Principal, Role, authenticate
from hub.device_identity import DeviceAuthority
from hub.http.downloads import DownloadGate, DownloadLimits
from hub.services.errors import Forbidden, Unavailable
from hub.services.overview import OverviewCache
from hub.services.places import Gazetteer
from hub.services.release_downloads import DeviceReleases
from hub.services.scope import Scope
from hub.services.space_cache import SpaceFinder
from hub.services.users import TOKEN_MAX_DAYS
from hub.throttle import SignInThrottle

#: How long a resolved token is trusted without asking the store again. A change made through
#: this hub takes effect at once (the cache is cleared); one made through another replica
#: within this many seconds.
PRINCIPAL_TTL = 5.0
#: What a hub that cannot enrol devices lacks (the API's 503, the dashboard's sentence).
NO_AUTHORITY = (
    "devices cannot enrol at this hub: it needs [ca] directory and [broker.admin] in"
    " its settings, and its signing and card keys"
)
#: What a hub that cannot serve releases to doors lacks.
NO_RELEASES = (
    "this hub serves no releases to doors: it needs [ca] directory and [releases] directory"
)


class PrincipalCache:
    """Resolved bearer tokens for a few seconds: a busy read endpoint skips the token query."""

    def __init__(self, ttl: float = PRINCIPAL_TTL, size: int = 10_000) -> None:
        self.ttl, self.size = ttl, size
        self._entries: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()
        self._generation = 0  # bumped by clear(): a lookup that raced it is not stored

    def get(self, engine: Engine, token: str) -> Principal:
        now = time.monotonic()
        hit = self._entries.get(token)
        if hit is not None and hit[0] > now:
            return hit[1]
        generation = self._generation
        who = authenticate(engine, token)  # raises AuthError: never cached
        until = now + self.ttl
        if who.expires_at is not None:  # never past the token's own end
            until = min(until, now + (who.expires_at - datetime.now(UTC)).total_seconds())
        with self._lock:
            if generation != self._generation:
                return who  # a user or token changed meanwhile: answer, but do not keep it
            if len(self._entries) >= self.size:
                self._entries.clear()
            self._entries[token] = (until, who)
        return who

    def clear(self) -> None:
        """Forget everything: a user, role or token changed."""
        with self._lock:
            self._generation += 1
            self._entries.clear()


def install(
    app: FastAPI,
    engine: Engine,
    card_key: bytes | None,
    publisher: AclPublisher | None,
    public_url: str | None,
    token_max_days: int = TOKEN_MAX_DAYS,
    authority: DeviceAuthority | None = None,
    sends_mail: bool = False,
    gazetteer: Gazetteer | None = None,
    device_releases: DeviceReleases | None = None,
    download_limits: DownloadLimits | None = None,
) -> None:
    """Give ``app`` what the dependencies below hand to its routes."""
    app.state.device_releases = device_releases
    app.state.downloads = DownloadGate(download_limits or DownloadLimits())
    app.state.engine = engine
    app.state.sends_mail = sends_mail
    app.state.authority = authority
    app.state.token_max_days = token_max_days
    app.state.card_key = card_key
    app.state.publisher = publisher
    app.state.principals = PrincipalCache()
    app.state.sign_ins = SignInThrottle()
    app.state.link_guesses = SignInThrottle()
    app.state.public_url = public_url.rstrip("/") if public_url else None
    app.state.public_hosts = frozenset({urlsplit(public_url).netloc.lower()} if public_url else ())
    app.state.overview = OverviewCache()
    app.state.spaces = SpaceFinder(gazetteer)


# The getters below only read what ``install`` put on the application: they are coroutines so
# that FastAPI calls them on the event loop, where a plain function would cost each request a
# hop to the thread pool per dependency (measured: a third of a millisecond each on this
# machine, a third of the time an operator's overview takes).


async def get_engine(request: Request) -> Engine:
    return request.app.state.engine


async def get_publisher(request: Request) -> AclPublisher | None:
    return request.app.state.publisher


async def get_authority(request: Request) -> DeviceAuthority:
    """What enrolment and revocation need; Unavailable (503) on a hub without it."""
    authority = request.app.state.authority
    if authority is None:
        raise Unavailable(NO_AUTHORITY)
    return authority


async def find_authority(request: Request) -> DeviceAuthority | None:
    """The same, or None: for a page that says what is missing instead of failing."""
    return request.app.state.authority


async def get_device_releases(request: Request) -> DeviceReleases:
    """What serving releases to doors needs; Unavailable (503) on a hub without it."""
    releases = request.app.state.device_releases
    if releases is None:
        raise Unavailable(NO_RELEASES)
    return releases


async def get_downloads(request: Request) -> DownloadGate:
    return request.app.state.downloads


async def get_public_url(request: Request) -> str:
    """Where the hub is reached: ``public_url`` as configured, else as this request reached
    it (the address a technician's browser used, which a Pi on the same network can too)."""
    configured: str | None = request.app.state.public_url
    return configured or str(request.base_url).rstrip("/")


async def get_card_key(request: Request) -> bytes | None:
    return request.app.state.card_key


async def get_principals(request: Request) -> PrincipalCache:
    return request.app.state.principals


async def get_sign_ins(request: Request) -> SignInThrottle:
    return request.app.state.sign_ins


async def get_link_guesses(request: Request) -> SignInThrottle:
    return request.app.state.link_guesses


async def get_sends_mail(request: Request) -> bool:
    return request.app.state.sends_mail


async def get_public_hosts(request: Request) -> frozenset[str]:
    return request.app.state.public_hosts


async def get_overview(request: Request) -> OverviewCache:
    return request.app.state.overview


async def get_spaces(request: Request) -> SpaceFinder:
    return request.app.state.spaces


async def get_token_max_days(request: Request) -> int:
    return request.app.state.token_max_days


async def client_address(request: Request) -> str:
    """The address a request came from, as the server saw it (a proxy's, unless trusted)."""
    return request.client.host if request.client is not None else "unknown"


Store = Annotated[Engine, Depends(get_engine)]
#: Sends changed access lists; None when the hub runs without a signing key or broker.
Publisher = Annotated[AclPublisher | None, Depends(get_publisher)]
#: Hashes card UIDs as the doors do; None when the hub was given none.
CardKey = Annotated[bytes | None, Depends(get_card_key)]
Authority = Annotated[DeviceAuthority, Depends(get_authority)]
#: The same, None on a hub that cannot enrol devices (NO_AUTHORITY says why).
MaybeAuthority = Annotated[DeviceAuthority | None, Depends(find_authority)]
#: The CA doors' certificates are from, and where releases' wheels lie (503 without).
Releases = Annotated[DeviceReleases, Depends(get_device_releases)]
#: How much doors may download at once (hub.http.downloads).
Downloads = Annotated[DownloadGate, Depends(get_downloads)]
#: The hub's URL as devices and browsers reach it (``public_url``, else this request's).
PublicUrl = Annotated[str, Depends(get_public_url)]
Principals = Annotated[PrincipalCache, Depends(get_principals)]
SignIns = Annotated[SignInThrottle, Depends(get_sign_ins)]
#: Counts tries of one-time links (invitations) per client, as SignIns counts sign-ins.
LinkGuesses = Annotated[SignInThrottle, Depends(get_link_guesses)]
#: Whether the hub sends mail (``[mail]`` is configured): else links are shown, not mailed.
SendsMail = Annotated[bool, Depends(get_sends_mail)]


async def get_mail_host(sends_mail: SendsMail, public_url: PublicUrl) -> str | None:
    """The hub's host name when it sends mail (a booking's confirmation names it in its
    calendar event's UID), None when it sends none."""
    return urlsplit(public_url).netloc if sends_mail else None


#: The hub's host when it sends mail, None when not: what the booking services confirm with.
MailHost = Annotated[str | None, Depends(get_mail_host)]
#: The hub's own host names, as configured (``--public-url``), for checking a form's origin.
PublicHosts = Annotated[frozenset[str], Depends(get_public_hosts)]
Overview = Annotated[OverviewCache, Depends(get_overview)]
#: What finding a space keeps in memory (the sites, the usual figures, the gazetteer).
SpacesFinder = Annotated[SpaceFinder, Depends(get_spaces)]
ClientAddress = Annotated[str, Depends(client_address)]
#: The longest an API token may live, in days (``http.token_max_days``).
TokenMaxDays = Annotated[int, Depends(get_token_max_days)]

bearer = HTTPBearer(auto_error=False)
BearerToken = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def principal(credentials: BearerToken, principals: Principals, store: Store) -> Principal:
    """The caller, from ``Authorization: Bearer hft_...``; 401 for anything else."""
    if credentials is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "sign in first", headers={"WWW-Authenticate": "Bearer"}
        )
    try:
        return principals.get(store, credentials.credentials)
    except AuthError as exc:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, str(exc), headers={"WWW-Authenticate": "Bearer"}
        ) from None


def allow(*roles: Role) -> Callable[[Principal], Principal]:
    """A dependency that lets only the given roles through (403 for the others)."""

    def check(who: Annotated[Principal, Depends(principal)]) -> Principal:
        Scope(who).require_role(*roles)
        return who

    return check


#: The signed-in caller of a staff endpoint: a network admin, operator or technician (a
#: member or company admin gets 403 before any staff rule is asked).
Caller = Annotated[Principal, Depends(allow(*STAFF_ROLES))]
#: The signed-in caller, whatever their role (their own account and tokens).
Anyone = Annotated[Principal, Depends(principal)]
Admin = Annotated[Principal, Depends(allow(Role.NETWORK_ADMIN))]
#: Those who install devices: network admins and technicians.
Installer = Annotated[Principal, Depends(allow(Role.NETWORK_ADMIN, Role.TECHNICIAN))]


def member_caller(who: Annotated[Principal, Depends(principal)]) -> Principal:
    """The signed-in member for their own things (profile, cards, visits, bookings,
    calendar): a user with the member role, or a company admin who is a member too. Anyone
    else (staff see members through the staff endpoints, under their own rules), and a
    company admin who is no member, gets 403: there is nothing of theirs to show."""
    Scope(who).require_role(Role.MEMBER, Role.COMPANY_ADMIN)
    if who.member_id is None:
        raise Forbidden("your account is not a member's")
    return who


def company_caller(who: Annotated[Principal, Depends(principal)]) -> Principal:
    """The signed-in company admin for their company's staff (``/company/...``): only their
    own company's, which the services take from ``who.company_id``."""
    Scope(who).require_role(Role.COMPANY_ADMIN)
    if who.company_id is None:
        raise Forbidden("your account looks after no company")
    return who


#: A member (or a company admin who is one) asking for their own things.
Member = Annotated[Principal, Depends(member_caller)]
#: A company admin asking for their own company's staff.
CompanyAdmin = Annotated[Principal, Depends(company_caller)]


def member_id(who: Member) -> str:
    """The signed-in member's id (``Member`` made sure there is one)."""
    if who.member_id is None:  # pragma: no cover - member_caller refuses it first
        raise Forbidden("your account is not a member's")
    return who.member_id


def employer_company(who: CompanyAdmin) -> str:
    """The signed-in company admin's company (``CompanyAdmin`` made sure there is one)."""
    if who.company_id is None:  # pragma: no cover - company_caller refuses it first
        raise Forbidden("your account looks after no company")
    return who.company_id


#: The signed-in member's id, for endpoints that need nothing else of them.
MemberId = Annotated[str, Depends(member_id)]
#: The signed-in company admin's company, for endpoints that need nothing else of them.
EmployerCompany = Annotated[str, Depends(employer_company)]
