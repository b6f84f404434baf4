"""One reader of the event table for every SSE stream of the server.

Each commit wakes one task that reads the new events once, unfiltered, and hands each to the
streams whose queue and type filters match, through a bounded buffer per stream. So reads of
the event table grow with commits, not with streams; a stream whose buffer fills (its client
reads too slowly) is dropped and may resume with `Last-Event-ID`. A stream reads the table
itself only to catch up from its resume id, once, through the queue/type indexes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from jobbie.errors import Unavailable
from jobbie.models import EventMessage
from jobbie.notifier import Notifier
from jobbie.server.metrics import Metrics
from jobbie.store.base import Store

log = logging.getLogger("jobbie.server")

PAGE = 500
# Events buffered per stream before it counts as too slow and is dropped.
BUFFER = 2000


class TooManyStreams(Unavailable):
    """The server already serves `--max-event-streams` streams."""


class Subscription:
    """One stream's filters and buffer. A `None` in the buffer means: the stream is over
    (dropped as too slow, or shutdown)."""

    __slots__ = ("buffer", "dropped", "queues", "types")

    def __init__(self, queues: tuple[str, ...], types: tuple[str, ...], size: int) -> None:
        self.queues = frozenset(queues)
        self.types = frozenset(types)
        # One slot more than `size` so the end marker always fits.
        self.buffer: asyncio.Queue[EventMessage | None] = asyncio.Queue(size + 1)
        self.dropped = False

    def matches(self, event: EventMessage) -> bool:
        return (not self.queues or event.queue in self.queues) and (
            not self.types or event.type in self.types
        )

    def end(self) -> None:
        """Free the buffer and tell the stream to finish."""
        while not self.buffer.empty():
            self.buffer.get_nowait()
        self.buffer.put_nowait(None)


class EventHub:
    """Reads new events once per commit and fans them out to the subscribed streams."""

    def __init__(
        self,
        store: Store,
        notifier: Notifier,
        metrics: Metrics,
        *,
        max_streams: int = 100,
        buffer: int = BUFFER,
    ) -> None:
        self._store = store
        self._notifier = notifier
        self._metrics = metrics
        self.max_streams = max_streams
        self._buffer = buffer
        self._subs: set[Subscription] = set()
        self._task: asyncio.Task[None] | None = None
        self._started: asyncio.Future[None] | None = None
        self.cursor = 0

    @property
    def streams(self) -> int:
        return len(self._subs)

    async def subscribe(self, queues: tuple[str, ...], types: tuple[str, ...]) -> Subscription:
        """A new stream: from now on it gets every matching event committed after the hub's
        cursor. Read `history` next to catch up from the stream's own resume id."""
        if len(self._subs) >= self.max_streams:
            raise TooManyStreams(f"the server already serves {self.max_streams} event streams")
        sub = Subscription(queues, types, self._buffer)
        self._subs.add(sub)
        self._metrics.event_streams.set(len(self._subs))
        try:
            await self._running()
        except BaseException:
            self.unsubscribe(sub)
            raise
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subs.discard(sub)
        self._metrics.event_streams.set(len(self._subs))

    async def history(
        self, after: int, queues: tuple[str, ...], types: tuple[str, ...]
    ) -> list[EventMessage]:
        """One page of matching events after `after` (a stream catching up on resume)."""
        self._metrics.event_reads.inc()
        return await self._store.read_events(after, queues, types, PAGE)

    async def _running(self) -> None:
        """Start the reader (at the newest event) unless it runs; wait until it has its cursor."""
        if self._task is not None and not self._task.done():
            if self._started is not None:
                await asyncio.shield(self._started)
            return
        started: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._started = started
        self._task = asyncio.create_task(self._run(started), name="jobbie-event-hub")
        await asyncio.shield(started)

    async def _run(self, started: asyncio.Future[None]) -> None:
        try:
            self.cursor = await self._store.last_event_id()
        except BaseException as exc:
            started.set_exception(exc)
            raise
        started.set_result(None)
        try:
            while self._subs and not self._notifier.closed:
                committed = self._notifier.commit_event  # taken before reading: none is missed
                self._metrics.event_reads.inc()
                try:
                    events = await self._store.read_events(self.cursor, (), (), PAGE)
                except Unavailable as exc:
                    log.warning("event streams: reading events failed, retrying: %s", exc)
                    await asyncio.sleep(1.0)
                    continue
                self._fan_out(events)
                if len(events) == PAGE:
                    continue
                await committed.wait()
        finally:
            for sub in list(self._subs):
                sub.end()
            self._subs.clear()
            self._metrics.event_streams.set(0)

    def _fan_out(self, events: list[EventMessage]) -> None:
        for event in events:
            for sub in list(self._subs):
                if not sub.matches(event):
                    continue
                try:
                    sub.buffer.put_nowait(event)
                except asyncio.QueueFull:
                    self._drop(sub)
            self.cursor = event.id

    def _drop(self, sub: Subscription) -> None:
        """The stream's client reads too slowly: stop buffering for it and end it."""
        sub.dropped = True
        self.unsubscribe(sub)
        sub.end()
        self._metrics.event_streams_dropped.inc()
        log.warning("event stream dropped: its client read too slowly (%d buffered)", self._buffer)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
