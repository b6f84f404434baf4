"""Live pages: one SSE stream per page that sends re-rendered fragments after commits.

The stream sends the page's live fragments at once (a tab that was hidden catches up), then
again after each commit that changes them, at most every `MIN_INTERVAL_S`: a busy server costs
a page a few renders a second, never one per job. The browser closes the stream while its tab
is hidden (static/console.js).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from jobbie.errors import JobbieError, ValidationError
from jobbie.server.runtime import runtime
from jobbie.ui import pages
from jobbie.ui.charts import history_charts
from jobbie.ui.web import page, render_fragment, store_of

MIN_INTERVAL_S = 0.5
KEEPALIVE_S = 15.0
Fragments = Callable[[], Awaitable[dict[str, str]]]


def _views(request: Request, view: str) -> Fragments:
    params = request.query_params
    if view == "dashboard":

        async def dashboard() -> dict[str, str]:
            ctx = await pages.dashboard_context(request)
            charts = await history_charts(store_of(request), None)
            return {
                "live-dashboard": render_fragment("_dashboard.html", **ctx),
                "live-charts": render_fragment("_charts.html", charts=charts),
            }

        return dashboard
    if view == "queue" and params.get("name"):
        name = params["name"]

        async def queue() -> dict[str, str]:
            ctx = await pages.queue_context(request, name)
            charts = await history_charts(store_of(request), name)
            return {
                "live-queue": render_fragment("_queue.html", **ctx),
                "live-charts": render_fragment("_charts.html", charts=charts),
            }

        return queue
    if view == "job" and params.get("id"):
        job_id = params["id"]

        async def job() -> dict[str, str]:
            ctx = await pages.job_context(request, job_id)
            return {"live-job": render_fragment("_job.html", **ctx)}

        return job
    if view == "bulk" and params.get("id"):
        bulk_id = params["id"]

        async def bulk() -> dict[str, str]:
            ctx = await pages.bulk_context(request, bulk_id)
            return {"live-bulk": render_fragment("_bulk.html", **ctx)}

        return bulk
    raise ValidationError(f"no live view {view!r} with those parameters")


@page
async def stream(request: Request) -> Response:
    fragments = _views(request, request.path_params["view"])
    await fragments()  # an unknown job or queue is a 404 now, not a broken stream
    return StreamingResponse(
        _stream(request, fragments),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _stream(request: Request, fragments: Fragments) -> AsyncIterator[bytes]:
    notifier = runtime(request).notifier
    last: dict[str, str] = {}
    while not notifier.closed:
        committed = notifier.commit_event  # taken before reading: no commit is missed
        try:
            current = await fragments()
        except JobbieError as exc:  # e.g. the job was deleted meanwhile
            yield b"event: gone\ndata: %s\n\n" % json.dumps(exc.message).encode()
            return
        changed = {k: v for k, v in current.items() if last.get(k) != v}
        if changed:
            last.update(changed)
            yield b"event: fragments\ndata: %s\n\n" % json.dumps(changed).encode()
        else:
            yield b": unchanged\n\n"
        try:
            async with asyncio.timeout(KEEPALIVE_S):
                await committed.wait()
        except TimeoutError:
            yield b": keep-alive\n\n"
            continue
        await asyncio.sleep(MIN_INTERVAL_S)
