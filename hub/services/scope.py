"""What a signed-in user may see and do: the hub's role rules, in one place.

- A network admin may do everything, at every site.
- A site operator sees only the sites they are given; any other site does not exist for them
  (not even a 403 that would confirm it does), nor does anything of it (a booking there
  answers as one that does not exist). Members of other sites (their own access reaches
  none of the operator's sites) they know only by id, what the door needs: a day guest from
  elsewhere has no name for them (``members.own_members``).
- A technician looks after devices at every site, but sees no people: no headcounts, visits,
  bookings, member names or door events about anyone (GDPR: the least data for the job).
- A member and a company admin are not staff: to every staff rule they are someone who may
  see no site and no people (the HTTP side does not even let them reach staff endpoints;
  this is the second wall). What they may see of their own is hub.services.self_service's.

Services ask a ``Scope`` instead of looking at roles themselves, so that a rule changes here
for every endpoint and page at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from hub.auth import Principal, Role
from hub.services.errors import Forbidden, NotFound

T = TypeVar("T")
#: The answer to a role that may not do something (the same words everywhere).
MAY_NOT = "your role may not do this"
#: Who brings devices into the network and takes them out (enrolment, revocation).
INSTALLERS = (Role.NETWORK_ADMIN, Role.TECHNICIAN)


@dataclass(frozen=True)
class Scope:
    """The rules for one principal."""

    who: Principal

    @property
    def sites(self) -> frozenset[str] | None:
        """The sites whose data this user may read; None: every site."""
        if self.who.role in (Role.NETWORK_ADMIN, Role.TECHNICIAN):
            return None
        # An operator their own; anyone else (a member, a company admin, a role added later
        # and not yet thought through here) none: the default is to see nothing.
        return self.who.sites if self.who.role == Role.SITE_OPERATOR else frozenset()

    @property
    def sees_people(self) -> bool:
        """Whether this user may see who was where (names, headcounts, visits)."""
        return self.who.role in (Role.NETWORK_ADMIN, Role.SITE_OPERATOR)

    @property
    def installs_devices(self) -> bool:
        """Whether this user may enrol and revoke devices (the fleet page's controls)."""
        return self.who.role in INSTALLERS

    @property
    def key(self) -> tuple[Role, frozenset[str] | None]:
        """Equal for users who see exactly the same: what they are shown may be shared."""
        return self.who.role, self.sites

    def may_see(self, site: str) -> bool:
        return self.sites is None or site in self.sites

    def only_visible(self, items: Iterable[T], site_of: Callable[[T], str]) -> list[T]:
        """The items at sites this user may see (one set lookup per item: the overview filters
        the whole network's 500 sites this way on every operator's request)."""
        sites = self.sites
        if sites is None:
            return list(items)
        return [item for item in items if site_of(item) in sites]

    def require_role(self, *roles: Role) -> None:
        """Forbidden unless the user has one of ``roles``."""
        if self.who.role not in roles:
            raise Forbidden(MAY_NOT)

    def require_site(self, site: str) -> None:
        """NotFound for a site this user may not see, as for one that does not exist."""
        if not self.may_see(site):
            raise NotFound(f"no site {site!r}")

    def require_people(self, message: str = MAY_NOT) -> None:
        """Forbidden for a user who may not see people (technicians)."""
        if not self.sees_people:
            raise Forbidden(message)

    def require_people_at(self, site: str) -> None:
        """Both: the user may see people, and at ``site``."""
        self.require_people()
        self.require_site(site)
