"""How the access-list publisher's methods hold its lock: one version at a time per process,
and a change whose version another process took first sent again under the next."""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from typing import Concatenate, ParamSpec, Protocol, TypeVar

from sqlalchemy.exc import IntegrityError

log = logging.getLogger("hub.access_lists")

#: Tries at sending a change whose version another hub process recorded first (each reads
#: the newest versions afresh, so only a process recording the same sites meanwhile fails it).
VERSION_TRIES = 5


class Publisher(Protocol):
    """What the decorators need of the publisher: its lock."""

    _lock: threading.RLock


S = TypeVar("S", bound=Publisher)
P = ParamSpec("P")
R = TypeVar("R")


def locked(method: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
    """Run a publisher method under its lock: read the current version, send the next."""

    @functools.wraps(method)
    def wrapper(self: S, *args: P.args, **kwargs: P.kwargs) -> R:
        with self._lock:
            return method(self, *args, **kwargs)

    return wrapper


def recording(method: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
    """Run a method that records versions under the publisher's lock, again when another
    hub process (a second hub, ingest) recorded one of the versions first: the primary key
    refused it, nothing of it was kept, and the change it sends is committed already, so
    dropping it with an error would leave the doors without it (a block, an erasure)."""

    @functools.wraps(method)
    def wrapper(self: S, *args: P.args, **kwargs: P.kwargs) -> R:
        with self._lock:
            for _ in range(VERSION_TRIES - 1):
                try:
                    return method(self, *args, **kwargs)
                except IntegrityError as exc:
                    log.info("a version was taken by another hub process (%s); again", exc.orig)
            return method(self, *args, **kwargs)

    return wrapper
