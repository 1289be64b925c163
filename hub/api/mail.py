"""The mail outbox, for network admins: what was sent, what waits, what failed."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from hub.http.deps import Admin, Store
from hub.services import mail
from hub.services.mail import MAX_LISTED, QueuedMail

router = APIRouter(prefix="/mail", tags=["mail"])


@router.get("/outbox", response_model=list[QueuedMail])
def outbox(
    store: Store,
    _: Admin,
    failed: Annotated[
        bool, Query(description="Only the mail the hub gave up on after its tries.")
    ] = False,
    before_id: Annotated[int | None, Query(ge=1, description="Page on: the last id.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LISTED)] = 100,
) -> list[QueuedMail]:
    """The outbox, newest first, without bodies (they may hold one-time links)."""
    return mail.list_outbox(store, failed, before_id, limit)


@router.post("/outbox/{mail_id}/retry", response_model=QueuedMail)
def send_again(mail_id: int, store: Store, _: Admin) -> QueuedMail:
    """Try an unsent mail again from now, with a fresh set of tries."""
    return mail.send_again(store, mail_id)
