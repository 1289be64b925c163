"""The fleet page, and what technicians and network admins do there: add a device (its one-time
enrolment token as text, as the command for the Pi and as a QR code of that command) and
revoke one.

The controls are shown to those who install devices (``Scope.installs_devices``) and the forms
post to routes that refuse everyone else with 403, as the API does; like every form of the
dashboard they are checked to come from the hub's own pages (``SameOrigin``). The same
services as the API's do the work (hub.services.enrolment, .revocation).

The token is shown once, on the answer to the form: no address holds it (a reload posts the
form again, which makes a new token and ends this one), no log line names it, and the page
is not cached (``templating.page``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import segno
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup
from pydantic import BaseModel

from hub.auth import Principal
from hub.http.deps import NO_AUTHORITY, Authority, MaybeAuthority, PublicUrl, Store
from hub.services import enrolment, fleet, revocation, rollout_reads, sites
from hub.services.errors import Invalid, NotFound, ServiceError
from hub.services.scope import INSTALLERS, Scope
from hub.web.session import PREFIX, SameOrigin, Viewer
from hub.web.templating import form_page, page

router = APIRouter(prefix=PREFIX, include_in_schema=False)
#: The lifetimes the form offers, in minutes (the service holds them to its bounds).
MIN_MINUTES = enrolment.MIN_LIFETIME // timedelta(minutes=1)
MAX_MINUTES = enrolment.MAX_LIFETIME // timedelta(minutes=1)


class DeviceForm(BaseModel):
    """What the form "Add a device" holds: shown again, as typed, beside an error."""

    site: str = ""
    device: str = ""
    kind: str = "door"
    valid_minutes: str = "60"


def installer(who: Viewer) -> Principal:
    """The signed-in user, if they install devices; 403 for everyone else."""
    Scope(who).require_role(*INSTALLERS)
    return who


Installing = Annotated[Principal, Depends(installer)]


@router.get("/fleet")
def fleet_page(
    request: Request, store: Store, who: Viewer, authority: MaybeAuthority
) -> HTMLResponse:
    return _fleet(request, store, who, authority is not None, DeviceForm())


@router.post("/fleet/devices", dependencies=[SameOrigin])
def add_device(
    request: Request,
    store: Store,
    who: Installing,
    authority: MaybeAuthority,
    hub_url: PublicUrl,
    site: Annotated[str, Form(max_length=64)] = "",
    device: Annotated[str, Form(max_length=64)] = "",
    kind: Annotated[str, Form(max_length=20)] = "door",
    valid_minutes: Annotated[str, Form(max_length=10)] = "60",
) -> HTMLResponse:
    """Register the device and show its token. A hub that cannot enrol devices makes none
    (no device could use it): the fleet page says what its settings lack."""
    form = DeviceForm(site=site, device=device, kind=kind, valid_minutes=valid_minutes)
    if authority is None:
        return _fleet(request, store, who, False, form, status_code=503)
    try:
        lifetime = timedelta(minutes=int(valid_minutes))
    except (ValueError, OverflowError):
        error = f"valid for: a whole number of minutes, from {MIN_MINUTES} to {MAX_MINUTES}"
        return _fleet(request, store, who, True, form, error)
    try:
        ticket = enrolment.start(store, who, site, device, kind, lifetime)
    except (Invalid, NotFound) as exc:
        return _fleet(request, store, who, True, form, exc)
    command = f"hafen provision enrol {hub_url} {ticket.token}"
    context = {"ticket": ticket, "command": command, "qr": command_qr(command)}
    return page(request, "enrolment.html", who, **context)


@router.get("/sites/{site}/devices/{device}/revoke")
def confirm_revocation(
    request: Request,
    site: str,
    device: str,
    store: Store,
    who: Installing,
    authority: MaybeAuthority,
) -> HTMLResponse:
    """The confirmation step: what is about to happen, and the button that does it."""
    shown = fleet.enrolment_of(store, who, site, device)
    unavailable = None if authority is not None else NO_AUTHORITY
    return page(request, "revoke.html", who, d=shown, unavailable=unavailable)


@router.post("/sites/{site}/devices/{device}/revoke", dependencies=[SameOrigin])
def revoke_device(
    request: Request,
    site: str,
    device: str,
    store: Store,
    who: Installing,
    authority: Authority,
) -> HTMLResponse:
    """End the device's access; the page says what was done, and offers to finish at the
    broker what could not be done there."""
    revoked = revocation.revoke(store, authority, who, site, device)
    return page(request, "revoked.html", who, r=revoked)


def command_qr(command: str) -> Markup:
    """``command`` as a QR code in SVG markup for the page itself: no XML declaration, no
    size (the stylesheet sizes it) and no style attribute, which the pages' policy forbids
    (templating.CSP); the modules are one path drawn with presentation attributes."""
    qr = segno.make(command, error="m")
    svg = qr.svg_inline(
        scale=1, svgclass="qr", lineclass=None, omitsize=True, title="QR code of the command"
    )
    return Markup(svg)  # segno's own markup: the command is only its geometry, never text


def _fleet(
    request: Request,
    store: Store,
    who: Principal,
    can_enrol: bool,
    form: DeviceForm,
    error: str | ServiceError | None = None,
    status_code: int | None = None,
) -> HTMLResponse:
    """The fleet page; for those who install devices, with the form (``form`` as typed and
    ``error`` beside it), or the sentence that says what the hub needs to enrol them."""
    context: dict[str, object] = {
        "devices": fleet.fleet_rows(store, who),
        #: The running or paused rollout each door is in, linked from its software.
        "rollouts": rollout_reads.live_rollout_of(store, who),
    }
    if Scope(who).installs_devices:
        context |= {
            "sites": sites.list_sites(store, who) if can_enrol else [],
            "form": form,
            "unavailable": None if can_enrol else NO_AUTHORITY,
            "min_minutes": MIN_MINUTES,
            "max_minutes": MAX_MINUTES,
        }
    return form_page(request, "fleet.html", who, error, status_code, **context)
