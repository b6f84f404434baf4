"""Client-side errors: the server's error answers rebuilt as the `jobbie.errors` hierarchy, and
`ServerUnreachable` for when there is no answer at all."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from jobbie.errors import (
    ERRORS_BY_CODE,
    Conflict,
    Forbidden,
    JobbieError,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
    Unavailable,
    UnsupportedMediaType,
    ValidationError,
)
from jobbie.models import ErrorBody

if TYPE_CHECKING:
    from jobbie.client._transport import Response

__all__ = ["SearchTimedOut", "ServerUnreachable", "error_from_response"]


class ServerUnreachable(JobbieError):
    """No answer from the server: connection refused or reset, DNS failure, or a timeout.

    Raised by the client only; `status` is 0 because no HTTP answer arrived.
    """

    code = "SERVER_UNREACHABLE"
    status = 0


class SearchTimedOut(JobbieError):
    """A search page hit the server's time limit before finding any match, so walking the
    pages (`iter_search`) cannot go on; narrow the filter with a queue, state or time range.

    Raised by the client only; `status` is 0 because the server answered 200 with
    `timed_out`.
    """

    code = "SEARCH_TIMED_OUT"
    status = 0


# An answer whose code we do not know still gets the closest class by its HTTP status.
_BY_STATUS: dict[int, type[JobbieError]] = {
    400: ValidationError,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
    503: Unavailable,
}


def error_from_response(resp: Response) -> JobbieError:
    """The exception for an error answer (status >= 400), carrying the server's message and
    code; the request id is attached as a note for bug reports."""
    try:
        body = msgspec.json.decode(resp.content, type=ErrorBody)
    except (msgspec.DecodeError, msgspec.ValidationError):
        text = resp.text.strip()[:500] or resp.reason_phrase
        cls = _BY_STATUS.get(resp.status_code, JobbieError)
        exc = cls(f"HTTP {resp.status_code}: {text}")
    else:
        known = ERRORS_BY_CODE.get(body.code)
        if known is not None:
            exc = known(body.error)
        else:
            cls = _BY_STATUS.get(resp.status_code, JobbieError)
            exc = cls(f"{body.code}: {body.error}")
    request_id = resp.headers.get("x-request-id")
    if request_id:
        exc.add_note(f"request id: {request_id}")
    return exc
