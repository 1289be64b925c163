"""What can go wrong in a service, in the service's words; adapters map each to a status.

Every error's message is meant for the person who asked (it becomes the HTTP ``detail``), so
it names what is wrong without revealing what the asker may not see.
"""

from __future__ import annotations

from hub.services.wording import Words


class ServiceError(Exception):
    """A request the hub does not carry out; ``str(error)`` says why, in English. Raised with
    ``Words``, a page can say it in its visitor's language too (``words``)."""

    def __init__(self, message: str | Words = "") -> None:
        super().__init__(str(message))
        self.words = message if isinstance(message, Words) else Words(str(message))


class NotFound(ServiceError):
    """No such thing, or none that the asker may see (the two are not told apart)."""


class Conflict(ServiceError):
    """The thing exists already, or the change would break a rule (the last admin)."""


class Invalid(ServiceError):
    """The request is well-formed but cannot be right: it names something that is not there,
    or asks for too much at once."""


class Forbidden(ServiceError):
    """The asker's role may not do this."""


class Unauthenticated(ServiceError):
    """The request does not show who asks: no credential, or one that does not check out (a
    door's signed request with another CA's certificate, an expired one, a stale signature)."""


class Unavailable(ServiceError):
    """Something the hub needs for this is not configured or not reachable (a card key, the
    broker); trying again later, or after configuring it, may succeed."""


class Gone(ServiceError):
    """It existed and is no more: a one-time link that was used or has expired."""
