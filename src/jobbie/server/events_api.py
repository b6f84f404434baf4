"""`GET /api/v1/events`: lifecycle events as Server-Sent Events.

Streams are fed by the server's one event reader (`event_hub.py`): a stream first catches up
from its resume id (`Last-Event-ID` or `?last_event_id=`), then takes what the hub hands it.
A comment line every 15 s keeps idle connections open through proxies. At most
`--max-event-streams` streams are served; more are refused with 503 and Retry-After.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import msgspec
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from jobbie.errors import ValidationError
from jobbie.models import ErrorBody, EventMessage
from jobbie.server.bodies import JSONResponse
from jobbie.server.event_hub import PAGE, EventHub, Subscription, TooManyStreams
from jobbie.server.runtime import runtime, store
from jobbie.store.states import EventType

KEEPALIVE_S = 15.0
RETRY_AFTER_S = 5
MAX_EVENT_ID = (1 << 63) - 1
_TYPES = {t.value for t in EventType}
_DIGITS = re.compile(r"[0-9]{1,19}")
_DROPPED = b": dropped: the client read too slowly; reconnect with Last-Event-ID\n\n"


def parse_event_id(value: str) -> int:
    """A resume id: ASCII digits only (`str.isdigit` takes '²'), within SQLite's 64 bits."""
    if _DIGITS.fullmatch(value) is None or int(value) > MAX_EVENT_ID:
        raise ValidationError(f"Last-Event-ID must be an event id from 0 to {MAX_EVENT_ID}")
    return int(value)


async def stream_events(request: Request) -> Response:
    queues = tuple(request.query_params.getlist("queue"))
    types = tuple(request.query_params.getlist("type"))
    unknown = set(types) - _TYPES
    if unknown:
        raise ValidationError(f"unknown event type(s): {', '.join(sorted(unknown))}")
    resume = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
    after = parse_event_id(resume) if resume is not None else None
    hub = runtime(request).events
    assert hub is not None, "the event hub is created in the lifespan"
    try:
        sub = await hub.subscribe(queues, types)
    except TooManyStreams as exc:
        return JSONResponse(
            ErrorBody(error=exc.message, code=exc.code),
            status_code=exc.status,
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )
    try:
        if after is None:
            after = await store(request).last_event_id()
    except BaseException:
        hub.unsubscribe(sub)
        raise
    return StreamingResponse(
        _events(request, hub, sub, after, queues, types),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _frame(event: EventMessage) -> bytes:
    data = msgspec.json.encode(event)
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (event.id, event.type.encode(), data)


async def _events(
    request: Request,
    hub: EventHub,
    sub: Subscription,
    after: int,
    queues: tuple[str, ...],
    types: tuple[str, ...],
) -> AsyncIterator[bytes]:
    notifier = runtime(request).notifier
    try:
        yield b": connected\n\n"
        # Catch up from the resume id; the hub already buffers what commits meanwhile.
        while True:
            events = await hub.history(after, queues, types)
            for event in events:
                yield _frame(event)
                after = event.id
            if len(events) < PAGE:
                break
        while not notifier.closed:
            try:
                async with asyncio.timeout(KEEPALIVE_S):
                    item = await sub.buffer.get()
            except TimeoutError:
                yield b": keep-alive\n\n"
                continue
            if item is None:
                if sub.dropped:
                    yield _DROPPED
                return
            if item.id > after:  # already sent while catching up
                yield _frame(item)
                after = item.id
    finally:
        hub.unsubscribe(sub)
