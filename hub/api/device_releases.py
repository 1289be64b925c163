"""Releases as doors download them (issue 17): a door's signed request for a release's
manifest or one of its files (docs/protocol.md, "Releases over HTTPS"). Who asks and what
it may fetch are hub.services.release_downloads' to say; how much at once is
hub.http.downloads'."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from hafen.device_requests import CERTIFICATE_HEADER, SIGNATURE_HEADER
from hafen.protocol import DEVICE_RELEASES_PATH, release_file_path, release_manifest_path
from hub.http.deps import Downloads, Releases, Store
from hub.http.downloads import NO_STORE
from hub.services import release_downloads
from hub.services.errors import Unauthenticated
from hub.services.release_downloads import Requester

router = APIRouter(prefix=DEVICE_RELEASES_PATH, tags=["device releases"])


def signed(request: Request) -> None:
    """Unsigned requests are refused first (401), also on a hub that serves no releases
    (whose other dependencies answer 503): every route but sign-in wants credentials."""
    if not (
        request.headers.get(CERTIFICATE_HEADER) and request.headers.get(SIGNATURE_HEADER)
    ):
        raise Unauthenticated("the request is not signed by a device")


def asking_device(
    request: Request,
    _signed: Annotated[None, Depends(signed)],
    store: Store,
    releases: Releases,
    downloads: Downloads,
) -> Requester:
    """The door whose signed request this is (401/403 otherwise), within its request rate
    (429). It signed the path the protocol names for what it asks, rebuilt here from the
    route's own parameters."""
    params = request.path_params
    if "name" in params:
        path = release_file_path(params["version"], params["name"])
    else:
        path = release_manifest_path(params["version"])
    door = release_downloads.requester(
        store, releases.ca_certificate, request.method, path, request.headers, datetime.now(UTC)
    )
    downloads.admit(door.key)
    return door


Door = Annotated[Requester, Depends(asking_device)]


@router.get(
    "/{version}/manifest",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def manifest(version: str, door: Door, store: Store) -> Response:
    """The release's manifest as the release key sealed it, for the door to check against
    the release keys it trusts."""
    release = release_downloads.downloadable(store, door.site, door.device, version)
    return Response(release.sealed, media_type="application/octet-stream", headers=NO_STORE)


@router.get(
    "/{version}/files/{name}",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def release_file(
    version: str, name: str, door: Door, store: Store, releases: Releases, downloads: Downloads
) -> Response:
    """One wheel the release's manifest names, by its file name there (any other name:
    404); at most a few at once per door (429)."""
    release = release_downloads.downloadable(store, door.site, door.device, version)
    path, found = release_downloads.file_on_disk(releases, release, name)
    return downloads.send_file(door.key, path, found)
