"""One rendering of every error as ``{"code", "message", "field"}``.

Domain errors carry their own HTTP status; FastAPI's request-validation errors (bad
JSON, wrong body type, bad query parameters) are rendered the same way so a caller
only ever parses one error shape.
"""

from __future__ import annotations

import re

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from orderguard.errors import OrderGuardError

_UNION_TAG = re.compile(r"^(dict|list|str|int|float|bool|function-\w+)(\[.*\])?$")


def _field_from_loc(loc: tuple[int | str, ...]) -> str:
    """Dotted field path from a pydantic location, without the union-member tags it inserts.

    >>> _field_from_loc(("body", "dict[str,any]"))
    'body'
    >>> _field_from_loc(("query", "atomic"))
    'atomic'
    """
    parts = [str(p) for p in loc if p not in ("body", "query", "path") and not _UNION_TAG.match(str(p))]
    return ".".join(parts) if parts else ("body" if loc and loc[0] == "body" else "request")


async def _domain_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, OrderGuardError)
    return JSONResponse(exc.to_dict(), status_code=exc.http_status)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {"loc": ("body",), "msg": "invalid request", "type": ""}
    field = _field_from_loc(tuple(first.get("loc", ("body",))))
    if first.get("type") == "json_invalid":
        message = f"`body` must be valid JSON; {first.get('msg')}"
        field = "body"
    elif first.get("type") == "missing":
        message = f"`{field}` is required"
    else:
        message = f"`{field}` must be valid: {first.get('msg')}; got {first.get('input')!r}"
    return JSONResponse({"code": "invalid_input", "message": message, "field": field}, status_code=422)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    app.add_exception_handler(OrderGuardError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
