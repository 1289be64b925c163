"""The mail outbox, for network admins: what was sent, what waits, what failed."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from hub.http.deps import Admin, Store
from hub.services import mail
from hub.services.bounds import INT64_MAX
from hub.services.mail import MAX_LISTED, QueuedMail

router = APIRouter(prefix="/mail", tags=["mail"])

#: A mail's id: the store's ids are 64-bit.
MailId = Annotated[int, Path(ge=1, le=INT64_MAX)]


@router.get("/outbox", response_model=list[QueuedMail])
def outbox(
    store: Store,
    _: Admin,
    failed: Annotated[
        bool, Query(description="Only the mail the hub gave up on after its tries.")
    ] = False,
    before_id: Annotated[
        int | None, Query(ge=1, le=INT64_MAX, description="Page on: the last id.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LISTED)] = 100,
) -> list[QueuedMail]:
    """The outbox, newest first, without bodies (they may hold one-time links)."""
    return mail.list_outbox(store, failed, before_id, limit)


@router.post("/outbox/{mail_id}/retry", response_model=QueuedMail)
def send_again(mail_id: MailId, store: Store, _: Admin) -> QueuedMail:
    """Try an unsent mail again from now, with a fresh set of tries."""
    return mail.send_again(store, mail_id)
