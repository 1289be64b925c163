"""Every request's text and numbers checked once, before any route or the store sees them.

A NUL in any text makes PostgreSQL fail the query (a 500, even at sign-in), an unpaired
surrogate fails both stores' drivers, and NaN, infinities or integers beyond 64 bits in a JSON
body fail the stores or the JSON answer. Instead of a rule on each field of each route, one
dependency of the whole application looks at everything a route will be given: path and
query parameters, form fields and every string, key and number of a JSON body, and answers
422 naming each place that holds something the hub cannot keep (``hub.services.bounds``
says what). It never echoes the bad input: the answer must itself be valid JSON.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from typing import Any

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError

from hub.services.bounds import unstorable_number, unstorable_text

#: Places (and errors) a 422 lists at most: a huge body of bad strings is one short answer.
MAX_ERRORS = 20


class UnstorableInput(RequestValidationError):
    """A request holds text or numbers the hub cannot store; answered 422 everywhere."""


async def refuse_unstorable(request: Request) -> None:
    """Raise ``UnstorableInput`` if anything the route will be given cannot be stored.

    Runs as a dependency of the whole application: FastAPI has read and parsed the body by
    then (both are cached on the request, so nothing is read or parsed twice), and neither
    another dependency (the caller's token) nor the route has run yet."""
    body = await _parsed_body(request)
    errors = list(islice(_problems(request, body), MAX_ERRORS))
    if errors:
        raise UnstorableInput(errors)


async def _parsed_body(request: Request) -> object:
    """The body as FastAPI hands it to the route: form fields or JSON; None if the route
    takes none, or one FastAPI does not parse (it refuses that itself)."""
    if getattr(request.scope.get("route"), "body_field", None) is None:
        return None
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.form()
        fields: dict[str, list[str]] = {}
        for name, value in form.multi_items():
            if isinstance(value, str):  # an uploaded file is not text the hub stores
                fields.setdefault(name, []).append(value)
        return {name: v[0] if len(v) == 1 else v for name, v in fields.items()}
    if kind == "application/json" or (kind.startswith("application/") and kind.endswith("+json")):
        return await request.json()
    return None


def _problems(request: Request, body: object) -> Iterator[dict[str, Any]]:
    for name, value in request.path_params.items():
        if isinstance(value, str) and (why := unstorable_text(value)):
            yield _error(("path", name), why)
    for name, value in request.query_params.multi_items():
        for part in (name, value):
            if why := unstorable_text(part):
                yield _error(("query", name), why)
    if body is not None:
        yield from _json_problems(body)


def _json_problems(body: object) -> Iterator[dict[str, Any]]:
    """Every string, key and number of a parsed JSON body that cannot be stored, by place;
    walked without recursion (a body nested as deep as the parser allows is no problem)."""
    stack: list[tuple[tuple[str | int, ...], object]] = [(("body",), body)]
    while stack:
        loc, value = stack.pop()
        why = None
        if isinstance(value, str):
            why = unstorable_text(value)
        elif isinstance(value, int | float):
            why = unstorable_number(value)
        elif isinstance(value, dict):
            for key in value:
                if key_why := unstorable_text(key):
                    yield _error(loc, f"a key {key_why}")
            items = [((*loc, k), v) for k, v in value.items() if not unstorable_text(k)]
            stack.extend(reversed(items))  # popped in the body's own order
        elif isinstance(value, list):
            stack.extend(reversed([((*loc, i), item) for i, item in enumerate(value)]))
        if why:
            yield _error(loc, why)


def _error(loc: tuple[str | int, ...], why: str) -> dict[str, Any]:
    # "input" stays empty: the value itself (NaN, a lone surrogate) may not be JSON.
    return {"type": "value_error", "loc": loc, "msg": f"Value error, {why}", "input": None}


#: For ``FastAPI(dependencies=[...])``: every route of the application checks its input.
Checked = Depends(refuse_unstorable)
