"""`POST /_test/clock`: move the server's clock forward (only with `--test-clock`).

Tests that drive a server over HTTP use it instead of sleeping for a lease, a schedule or a
throttle window. The route exists only when the test setting is on, and it is not part of
the API document.
"""

from __future__ import annotations

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from jobbie.errors import ValidationError
from jobbie.server.bodies import decode, json_response
from jobbie.server.runtime import runtime


class AdvanceRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Seconds to move forward, and whether to run a scheduler pass afterwards."""

    seconds: float = msgspec.field(default=0.0)
    maintain: bool = True


class AdvanceResponse(msgspec.Struct):
    offset_ms: int
    now_ms: int
    maintenance: dict[str, int] | None = None


async def advance_clock(request: Request) -> Response:
    req = await decode(request, AdvanceRequest)
    rt = runtime(request)
    if not 0 <= req.seconds <= 10 * 365 * 86400:
        raise ValidationError("seconds must be between 0 and ten years")
    rt.clock.advance(req.seconds)
    report = None
    if req.maintain and rt.scheduler is not None:
        report = await rt.scheduler.run_once()
    return json_response(
        AdvanceResponse(offset_ms=rt.clock.offset_ms, now_ms=rt.clock.now_ms(), maintenance=report)
    )
