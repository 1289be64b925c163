"""Service errors as HTTP errors: each kind has one status, the same in the API and on the
dashboard, and is answered by whichever handler the application uses for HTTP errors (JSON
for the API, a page under /ui)."""

from __future__ import annotations

import inspect

from fastapi import FastAPI, Request, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from hub.services.errors import (
    Conflict,
    Forbidden,
    Gone,
    Invalid,
    NotFound,
    ServiceError,
    Unauthenticated,
    Unavailable,
)

STATUS: dict[type[ServiceError], int] = {
    NotFound: status.HTTP_404_NOT_FOUND,
    Conflict: status.HTTP_409_CONFLICT,
    Invalid: status.HTTP_422_UNPROCESSABLE_CONTENT,
    Forbidden: status.HTTP_403_FORBIDDEN,
    Unauthenticated: status.HTTP_401_UNAUTHORIZED,
    Unavailable: status.HTTP_503_SERVICE_UNAVAILABLE,
    Gone: status.HTTP_410_GONE,
}


class Refused(HTTPException):
    """The HTTP error a service's refusal became: its words in English as the detail, and the
    refusal itself (``error``), whose words a page says in its visitor's language."""

    def __init__(self, status_code: int, error: ServiceError) -> None:
        super().__init__(status_code, str(error))
        self.error = error


def as_http(error: ServiceError) -> HTTPException:
    """The HTTP error of the same meaning, with the service's words as its detail."""
    code = next(
        (code for kind, code in STATUS.items() if isinstance(error, kind)),
        status.HTTP_500_INTERNAL_SERVER_ERROR,
    )
    return Refused(code, error)


async def _answer(request: Request, error: Exception) -> Response:
    assert isinstance(error, ServiceError)
    handler = request.app.exception_handlers.get(HTTPException, http_exception_handler)
    response = handler(request, as_http(error))
    return await response if inspect.isawaitable(response) else response


def map_service_errors(app: FastAPI) -> None:
    """Answer every ``ServiceError`` a route lets out as its HTTP error."""
    app.add_exception_handler(ServiceError, _answer)
