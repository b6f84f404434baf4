"""One place that turns exceptions into the spec's JSON error responses."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from jobbie.errors import JobbieError, NotFound
from jobbie.models import ErrorBody
from jobbie.server.bodies import JSONResponse

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
    code = _HTTP_CODES.get(exc.status_code, "HTTP_ERROR")
    return error_response(exc.status_code, code, str(exc.detail))


EXCEPTION_HANDLERS = {JobbieError: jobbie_error, HTTPException: http_error}
