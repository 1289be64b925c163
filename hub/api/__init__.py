"""The hub's HTTP API: a router per resource, each a thin adapter over hub.services (parse the
request, call the service, answer). ``ROUTERS`` is what hub.app mounts."""

from __future__ import annotations

from fastapi import APIRouter

from hub.api import (
    auth,
    bookings,
    calendars,
    cards,
    companies,
    company,
    company_bookings,
    company_use,
    enrolment,
    events,
    fleet,
    grants,
    health,
    invitations,
    mail,
    me,
    members,
    my_bookings,
    occupancy,
    overview,
    plans,
    reports,
    sites,
    users,
    visits,
    waiting,
)

ROUTERS: list[APIRouter] = [
    health.router,
    auth.router,
    sites.router,
    enrolment.router,
    plans.router,
    members.router,
    grants.router,
    cards.router,
    bookings.router,
    my_bookings.router,
    company_bookings.router,
    events.router,
    companies.router,
    users.router,
    visits.router,
    overview.router,
    fleet.router,
    occupancy.router,
    reports.router,
    invitations.router,
    mail.router,
    me.router,
    company.router,
    calendars.router,
    company_use.router,
    waiting.router,
]
