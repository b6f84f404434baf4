"""One place that turns exceptions into the spec's JSON error responses."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from jobbie.errors import JobbieError, NotFound
from jobbie.logs import request_id
from jobbie.models import ErrorBody
from jobbie.server.allow import not_allowed
from jobbie.server.bodies import JSONResponse
from jobbie.server.runtime import runtime

log = logging.getLogger("jobbie.server")

_HTTP_CODES = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}


def error_response(status: int, code: str, message: str) -> Response:
    return JSONResponse(ErrorBody(error=message, code=code), status_code=status)


async def jobbie_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, JobbieError)
    return error_response(exc.status, exc.code, exc.message)


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own errors (unknown route, wrong method) in our format."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return error_response(404, NotFound.code, f"no route for {request.url.path}")
    if exc.status_code == 405:
        allowed = runtime(request).allow.allowed(request.url.path)
        body, headers = not_allowed(request.method, allowed)
        return JSONResponse(body, 405, headers={k.decode(): v.decode() for k, v in headers})
    code = _HTTP_CODES.get(exc.status_code, "HTTP_ERROR")
    return error_response(exc.status_code, code, str(exc.detail))


def internal_message() -> str:
    """The message of a 500: the request id lets an operator find the logged traceback."""
    return f"internal server error (request id {request_id.get()})"


async def unexpected_error(request: Request, exc: Exception) -> Response:
    """Anything else: a JSON 500 (Starlette's default is plain text). The exception goes on
    to RequestContextMiddleware, which logs it with the request id."""
    return error_response(500, "INTERNAL", internal_message())


async def client_gone(request: Request, exc: Exception) -> Response:
    """The client closed the connection while its body was read: nobody to answer, nothing
    went wrong here. 499 (nginx's "client closed request") labels it in logs and metrics."""
    return Response(status_code=499)


EXCEPTION_HANDLERS = {
    JobbieError: jobbie_error,
    HTTPException: http_error,
    ClientDisconnect: client_gone,
    Exception: unexpected_error,
}
