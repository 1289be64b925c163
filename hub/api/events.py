"""Door events: search (newest first, keyset pages) and remote unlock of a door."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from hub import db
from hub.api.deps import Caller, Store, require_site
from hub.auth import Role
from hub.commands import command_message

router = APIRouter(tags=["events"])


class Event(BaseModel):
    id: int
    event_id: str
    site: str
    device: str
    seq: int
    kind: str
    at: datetime
    data: dict


@router.get("/events", response_model=list[Event])
def search_events(
    store: Store,
    who: Caller,
    site: str | None = None,
    device: str | None = None,
    kind: str | None = None,
    member: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before_id: Annotated[
        int | None, Query(ge=1, le=2**63 - 1, description="Page on: the last id you got.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[Event]:
    """Door events, newest first; operators see only their sites' events."""
    if who.role == Role.TECHNICIAN:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "your role may not do this")
    e = db.events.c
    query = select(*(c for c in db.events.c if c.name != "member")).order_by(e.id.desc())
    query = query.limit(limit)
    if site is not None:
        require_site(who, site)
        query = query.where(e.site == site)
    elif who.role == Role.SITE_OPERATOR:
        query = query.where(e.site.in_(sorted(who.sites)))
    for column, value in ((e.device, device), (e.kind, kind)):
        if value is not None:
            query = query.where(column == value)
    if member is not None:
        query = query.where(e.member == member)
    if since is not None:
        query = query.where(e.at >= since)
    if until is not None:
        query = query.where(e.at < until)
    if before_id is not None:
        query = query.where(e.id < before_id)
    with store.connect() as conn:
        rows = conn.execute(query).all()
    return [Event.model_validate(row._asdict()) for row in rows]


class UnlockIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seconds: Annotated[float, Field(ge=1, le=3600)] = 5.0


class CommandSent(BaseModel):
    command: str


@router.post(
    "/sites/{site}/devices/{device}/unlock",
    response_model=CommandSent,
    status_code=status.HTTP_202_ACCEPTED,
)
def remote_unlock(
    site: str, device: str, body: UnlockIn, request: Request, store: Store, who: Caller
) -> CommandSent:
    """Unlock a door from afar (letting a day guest in); the door records it and replies."""
    if who.role == Role.TECHNICIAN:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "your role may not do this")
    require_site(who, site)
    with store.connect() as conn:
        known = conn.scalar(
            select(db.devices.c.id).where(db.devices.c.site == site, db.devices.c.id == device)
        )
    if known is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no device {device!r} at {site!r}")
    publisher = request.app.state.publisher
    if publisher is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the hub has no broker")
    topic, payload, command_id = command_message(
        publisher.key, site, device, "unlock", {"seconds": body.seconds}
    )
    try:
        publisher.send(topic, payload, retain=False)
    except (TimeoutError, RuntimeError, ValueError):
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "the broker is not reachable; try again"
        ) from None
    return CommandSent(command=command_id)
