"""The hub's HTTP API: a router per resource, each a thin adapter over hub.services (parse the
request, call the service, answer). ``ROUTERS`` is what hub.app mounts."""

from __future__ import annotations

from fastapi import APIRouter

from hub.api import (
    auth,
    bookings,
    cards,
    companies,
    enrolment,
    events,
    fleet,
    grants,
    health,
    members,
    occupancy,
    overview,
    plans,
    reports,
    sites,
    spaces,
    users,
    visits,
)

ROUTERS: list[APIRouter] = [
    health.router,
    auth.router,
    sites.router,
    spaces.router,
    enrolment.router,
    plans.router,
    members.router,
    grants.router,
    cards.router,
    bookings.router,
    events.router,
    companies.router,
    users.router,
    visits.router,
    overview.router,
    fleet.router,
    occupancy.router,
    reports.router,
]
