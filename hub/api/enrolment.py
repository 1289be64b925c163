"""Devices' identities: a technician's one-time token, the device's enrolment, revocation."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query, status

from hub.http.deps import Authority, Installer, Store
from hub.services import enrolment, revocation
from hub.services.enrolment import (
    MAX_LIFETIME,
    MIN_LIFETIME,
    EnrolmentBundle,
    EnrolmentRequest,
    EnrolmentTicket,
)
from hub.services.revocation import Revoked

router = APIRouter(tags=["enrolment"])
Minutes = Annotated[
    int,
    Query(
        ge=MIN_LIFETIME // timedelta(minutes=1),
        le=MAX_LIFETIME // timedelta(minutes=1),
        description="How long the token is valid.",
    ),
]


@router.post(
    "/sites/{site_id}/devices/{device_id}/enrolment",
    response_model=EnrolmentTicket,
    status_code=status.HTTP_201_CREATED,
)
def start_enrolment(
    site_id: str,
    device_id: str,
    store: Store,
    who: Installer,
    kind: str = "door",
    valid_minutes: Minutes = 60,
) -> EnrolmentTicket:
    """Register the device (if new) and give a one-time enrolment token for it; the device
    runs `hafen provision enrol HUB_URL TOKEN`. Earlier tokens for the device end."""
    lifetime = timedelta(minutes=valid_minutes)
    return enrolment.start(store, who, site_id, device_id, kind, lifetime)


@router.post("/enrol", response_model=EnrolmentBundle)
def enrol(request: EnrolmentRequest, store: Store, authority: Authority) -> EnrolmentBundle:
    """A device's enrolment: the token is its credential, used once. The answer holds the
    device's certificate and the secrets its config needs; the private key stays on it."""
    return enrolment.redeem(store, authority, request)


@router.post("/sites/{site_id}/devices/{device_id}/revoke", response_model=Revoked)
def revoke(
    site_id: str, device_id: str, store: Store, who: Installer, authority: Authority
) -> Revoked:
    """End the device's access at once: its client at the broker, its certificates."""
    return revocation.revoke(store, authority, who, site_id, device_id)
