"""Door events: search (newest first, keyset pages) and remote unlock of a door."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from pydantic import BaseModel

from hub.http.deps import Caller, Publisher, Store
from hub.services import events
from hub.services.bounds import Instant
from hub.services.events import Event, UnlockIn

router = APIRouter(tags=["events"])


class CommandSent(BaseModel):
    command: str


@router.get("/events", response_model=list[Event])
def search_events(
    store: Store,
    who: Caller,
    site: str | None = None,
    device: str | None = None,
    kind: str | None = None,
    member: str | None = None,
    since: Annotated[
        Instant | None, Query(description="From this time (UTC without an offset).")
    ] = None,
    until: Annotated[
        Instant | None, Query(description="Before this time (UTC without an offset).")
    ] = None,
    before_id: Annotated[
        int | None, Query(ge=1, le=2**63 - 1, description="Page on: the last id you got.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[Event]:
    """Door events, newest first; operators see only their sites' events."""
    return events.search_events(
        store,
        who,
        site=site,
        device=device,
        kind=kind,
        member=member,
        since=since,
        until=until,
        before_id=before_id,
        limit=limit,
    )


@router.post(
    "/sites/{site}/devices/{device}/unlock",
    response_model=CommandSent,
    status_code=status.HTTP_202_ACCEPTED,
)
def remote_unlock(
    site: str, device: str, body: UnlockIn, store: Store, publisher: Publisher, who: Caller
) -> CommandSent:
    """Unlock a door from afar (letting a day guest in); the door records it and replies."""
    return CommandSent(command=events.unlock(store, publisher, who, site, device, body.seconds))
