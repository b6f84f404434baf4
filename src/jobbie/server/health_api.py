"""`/healthz` (liveness) and `/readyz` (readiness).

A restart does not help a full disk, so liveness says only that the process and its writer
run; readiness says whether writes work now, and turns back on by itself once they do (the
store probes with a small write while they fail). Point restarts at `/healthz` and traffic
routing or alerts at `/readyz`.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from jobbie.errors import Unavailable
from jobbie.models import Health
from jobbie.server.bodies import json_response
from jobbie.server.runtime import runtime, store


async def healthz(request: Request) -> Response:
    """200 while the process and its writer run; 503 once shutdown has begun."""
    if runtime(request).draining:
        raise Unavailable("the server is shutting down")
    ready = await store(request).readiness()
    if ready.writer != "running":
        raise Unavailable("the database writer has stopped")
    return json_response(Health(status="ok"))


async def readyz(request: Request) -> Response:
    """200 while writes work; 503 with the reason while they fail or shutdown has begun."""
    ready = await store(request).readiness()
    if runtime(request).draining:
        ready.status = "unavailable"
    return json_response(ready, 200 if ready.status == "ok" else 503)
