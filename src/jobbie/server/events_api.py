"""`GET /api/v1/events`: lifecycle events as Server-Sent Events.

Each client reads the event table at its own pace from its last id, so a slow consumer holds
no buffer in the server and never slows writers; new commits wake the stream at once, and a
comment line every 15 s keeps idle connections open through proxies.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import msgspec
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from jobbie.errors import ValidationError
from jobbie.server.runtime import runtime, store
from jobbie.store.states import EventType

KEEPALIVE_S = 15.0
_PAGE = 500
_TYPES = {t.value for t in EventType}


async def stream_events(request: Request) -> Response:
    queues = tuple(request.query_params.getlist("queue"))
    types = tuple(request.query_params.getlist("type"))
    unknown = set(types) - _TYPES
    if unknown:
        raise ValidationError(f"unknown event type(s): {', '.join(sorted(unknown))}")
    resume = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
    if resume is not None:
        if not resume.isdigit():
            raise ValidationError("Last-Event-ID must be an event id")
        after = int(resume)
    else:
        after = await store(request).last_event_id()
    return StreamingResponse(
        _events(request, after, queues, types),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _events(
    request: Request, after: int, queues: tuple[str, ...], types: tuple[str, ...]
) -> AsyncIterator[bytes]:
    rt = runtime(request)
    st = store(request)
    yield b": connected\n\n"
    while not rt.notifier.closed:
        committed = rt.notifier.commit_event  # taken before reading: no commit is missed
        events = await st.read_events(after, queues, types, _PAGE)
        for event in events:
            data = msgspec.json.encode(event)
            yield b"id: %d\nevent: %s\ndata: %s\n\n" % (event.id, event.type.encode(), data)
            after = event.id
        if len(events) == _PAGE:
            continue
        try:
            async with asyncio.timeout(KEEPALIVE_S):
                await committed.wait()
        except TimeoutError:
            yield b": keep-alive\n\n"
