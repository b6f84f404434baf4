"""The one exception hierarchy: raised by the store, mapped to HTTP by the server, rebuilt by
the client from the server's `code`."""

from __future__ import annotations

from typing import ClassVar


class JobbieError(Exception):
    """Base of every Jobbie error; carries the wire `code` and HTTP `status`."""

    code: ClassVar[str] = "INTERNAL"
    status: ClassVar[int] = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ValidationError(JobbieError):
    """The request is malformed or out of bounds."""

    code = "VALIDATION_ERROR"
    status = 400


class Unauthorized(JobbieError):
    """No or a wrong API key."""

    code = "UNAUTHORIZED"
    status = 401


class Forbidden(JobbieError):
    """A request this server refuses to serve: a read-only key asking for a change, a browser
    request from another site, or a Host name this server does not answer to."""

    code = "FORBIDDEN"
    status = 403


class NotFound(JobbieError):
    """The job, queue, batch or schedule does not exist."""

    code = "NOT_FOUND"
    status = 404


class Conflict(JobbieError):
    """The action does not apply to the object's current state."""

    code = "CONFLICT"
    status = 409


class LeaseLost(Conflict):
    """The caller no longer holds the job's lease (expired, reassigned or finished)."""

    code = "LEASE_LOST"
    status = 409


class PayloadTooLarge(JobbieError):
    """A body, payload or other JSON value is over its size limit."""

    code = "PAYLOAD_TOO_LARGE"
    status = 413


class UnsupportedMediaType(JobbieError):
    """A request body without `Content-Type: application/json`."""

    code = "UNSUPPORTED_MEDIA_TYPE"
    status = 415


class Unavailable(JobbieError):
    """The server is shutting down or could not commit."""

    code = "UNAVAILABLE"
    status = 503


ERRORS_BY_CODE: dict[str, type[JobbieError]] = {
    cls.code: cls
    for cls in (
        JobbieError,
        ValidationError,
        Unauthorized,
        Forbidden,
        NotFound,
        Conflict,
        LeaseLost,
        PayloadTooLarge,
        UnsupportedMediaType,
        Unavailable,
    )
}
