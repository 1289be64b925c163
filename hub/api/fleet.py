"""The fleet: every device the caller may see, its state and what should worry its keeper."""

from __future__ import annotations

from fastapi import APIRouter

from hub.http.deps import Caller, Store
from hub.services import fleet
from hub.services.fleet import FleetRow

router = APIRouter(tags=["fleet"])


@router.get("/fleet", response_model=list[FleetRow])
def list_fleet(store: Store, who: Caller) -> list[FleetRow]:
    """Every device at the sites the caller may see, offline and worrying ones first: online,
    last seen, software, access-list version and lag, and the checks: ``unverified`` (a list
    of its site published a while ago is not in the door's own state), ``takeovers`` (its
    session taken over by another connection), ``faults`` (component -> what is wrong) and
    ``refused_states`` (states published as the device without its proof: forged); and its
    last self-test on site, ``selftest`` (when, passed, the failed checks and why); when it
    last enrolled, ``enrolled_at``, and ``revoked_at`` once its access was ended."""
    return fleet.fleet_rows(store, who)
