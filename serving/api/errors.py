"""One rendering of every error as ``{"code", "message", "field"}``.

Domain errors carry their own HTTP status; FastAPI's request-validation errors (bad
JSON, wrong body type, bad query parameters), the router's own answers (404, 405) and
a body over the size limit (413, :class:`BodyLimit`) are rendered the same way, so a
caller only ever parses one error shape. A fault of orderguard itself is a 500 in the
same shape, logged with its traceback, never the traceback itself.
"""

from __future__ import annotations

import logging
import re

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orderguard.errors import OrderGuardError, excerpt

logger = logging.getLogger("orderguard.serving")

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


#: Seconds a client should wait before retrying a 503 (a dependency restarting is usually back by then).
RETRY_AFTER_S = 1

#: Headers an error status carries: when to retry a 503, how to authenticate after a 401.
_ERROR_HEADERS: dict[int, dict[str, str]] = {503: {"Retry-After": str(RETRY_AFTER_S)},
                                             401: {"WWW-Authenticate": "Bearer"}}


async def _domain_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, OrderGuardError)
    return JSONResponse(exc.to_dict(), status_code=exc.http_status, headers=_ERROR_HEADERS.get(exc.http_status))


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
        message = f"`{field}` must be valid: {first.get('msg')}; got {excerpt(first.get('input'))}"
    return JSONResponse({"code": "invalid_input", "message": message, "field": field}, status_code=422)


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large", 415: "unsupported_media_type"}


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    if exc.status_code == 400:  # the framework could not read the body (not UTF-8, broken framing)
        return JSONResponse({"code": "invalid_input", "field": "body",
                             "message": f"`body` must be valid JSON text (UTF-8); {exc.detail}"}, status_code=422)
    if exc.status_code == 404:
        message = f"`path` must be one of the service's routes (see /docs); got {excerpt(request.url.path)}"
        field: str | None = "path"
    elif exc.status_code == 405:
        message = f"`method` must be one the route allows; got {request.method}"
        field = "method"
    else:
        message, field = str(exc.detail), None
    headers = getattr(exc, "headers", None)
    if exc.status_code == 405:
        headers = {**(headers or {}), "Allow": _allowed(request)}
    return JSONResponse({"code": code, "message": message, "field": field}, status_code=exc.status_code,
                        headers=headers)


def _allowed(request: Request) -> str:
    """Every method some route serves at the request's path: the router names only the first route's, and a path
    may be served by several routes (``GET`` and ``POST /v1/rules``)."""
    routes = request.app.router.routes
    return ", ".join(method for method in _METHODS
                     if any(r.matches({**request.scope, "method": method})[0] is Match.FULL for r in routes))


#: Methods a 405's ``Allow`` may list (``HEAD`` comes with every ``GET``).
_METHODS = ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT")


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"code": "internal_error", "message": "orderguard failed on this request; it is logged",
                         "field": None}, status_code=500)


class BodyLimit:
    """Refuse a request body over ``max_bytes`` with a 413 in the error shape, before anything parses it.

    A declared ``Content-Length`` over the limit is answered at once; a chunked body is
    counted as it streams and, at the limit, answered with the 413 while the app is told
    the client left (pure ASGI, so the body is never buffered here).
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _refusal(self, size: str) -> JSONResponse:
        return JSONResponse({"code": "payload_too_large", "field": "body",
                             "message": f"`body` must be at most {self.max_bytes:,} bytes; got {size}"},
                            status_code=413, headers={"Connection": "close"})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refusal(f"{int(declared):,} bytes")(scope, receive, send)
            return
        seen = 0
        started = refused = False

        async def counted() -> Message:
            nonlocal seen, refused
            message = await receive()
            if message["type"] == "http.request" and not refused:
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    refused = True
                    if not started:
                        await self._refusal(f"more than {self.max_bytes:,} bytes")(scope, receive, send)
                    return {"type": "http.disconnect"}  # the app stops reading; its answer is dropped
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            if refused:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched_send)
        except Exception:
            if not refused:  # the app's reaction to the cut-off body is expected; anything else is not
                raise


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    app.add_exception_handler(OrderGuardError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _internal_error)
