"""Sites and their devices."""

from __future__ import annotations

from fastapi import APIRouter, status

from hub.http.deps import Admin, Caller, Installer, Store
from hub.services import sites
from hub.services.sites import Device, DeviceIn, Site, SiteIn

router = APIRouter(prefix="/sites", tags=["sites"])


@router.get("", response_model=list[Site])
def list_sites(store: Store, who: Caller) -> list[Site]:
    """The sites the caller may see (all of them for admins and technicians)."""
    return sites.list_sites(store, who)


@router.post("", response_model=Site, status_code=status.HTTP_201_CREATED)
def create_site(site: SiteIn, store: Store, _: Admin) -> Site:
    return sites.create_site(store, site)


@router.get("/{site_id}", response_model=Site)
def get_site(site_id: str, store: Store, who: Caller) -> Site:
    return sites.get_site(store, who, site_id)


@router.get("/{site_id}/devices", response_model=list[Device])
def list_devices(site_id: str, store: Store, who: Caller) -> list[Device]:
    return sites.list_devices(store, who, site_id)


@router.post("/{site_id}/devices", response_model=Device, status_code=status.HTTP_201_CREATED)
def add_device(site_id: str, device: DeviceIn, store: Store, _: Installer) -> Device:
    return sites.add_device(store, site_id, device)
