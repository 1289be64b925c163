"""What a device and the hub exchange when the device enrols (``POST /enrol``).

The device sends a one-time token and a certificate request for the key it made; the hub
answers with everything the device's config needs. Both sides validate with these models:
the hub what it is sent, the device what it is answered (from a hub it reached over HTTPS,
but a config it writes must never hold what it did not check).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from hafen.ids import Slug
from hafen.protocol import MAX_PEM_CHARS

#: A token as handed out is 52 characters; anything much longer is not one of ours.
MAX_TOKEN_CHARS = 128
#: The path the hub takes enrolments at, under its URL.
ENROL_PATH = "/enrol"


class EnrolmentRequest(BaseModel):
    """What a device sends: the token and a PEM certificate request for the key it made."""

    model_config = ConfigDict(extra="forbid")

    token: Annotated[str, Field(min_length=1, max_length=MAX_TOKEN_CHARS)]
    csr: Annotated[str, Field(min_length=1, max_length=MAX_PEM_CHARS)]


class SiteSettings(BaseModel):
    """What a door takes of its site's settings at enrolment."""

    id: Slug
    timezone: Annotated[str, Field(max_length=64)]
    capacity: int | None = None
    opening_hours: Annotated[list[dict[str, Any]], Field(max_length=64)] | None = None


class BrokerAccess(BaseModel):
    """Where the device reaches the broker, and its own client there."""

    host: Annotated[str, Field(min_length=1, max_length=253)]
    port: Annotated[int, Field(ge=1, le=65535)]
    username: Annotated[str, Field(min_length=1, max_length=130)]
    password: Annotated[str, Field(min_length=16, max_length=256)]


class EnrolmentBundle(BaseModel):
    """Everything a device needs for its config, answered once for a valid token."""

    site: SiteSettings
    device: Slug
    kind: Annotated[str, Field(max_length=20)]
    certificate: Annotated[str, Field(max_length=MAX_PEM_CHARS)]
    ca_certificate: Annotated[str, Field(max_length=MAX_PEM_CHARS)]
    not_after: datetime
    hub_public_keys: Annotated[list[str], Field(min_length=1, max_length=8)]
    card_key: Annotated[str, Field(min_length=32, max_length=256)]
    broker: BrokerAccess
    #: The keys that sign releases; with them the door takes updates from the hub it
    #: enrolled with (``[updates]``). Empty: a hub that rolls out no releases.
    release_keys: Annotated[list[str], Field(max_length=8)] = []
