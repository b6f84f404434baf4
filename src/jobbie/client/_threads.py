"""A small pool of daemon threads for sync handlers, answering the event loop in batches.

`concurrent.futures.ThreadPoolExecutor` joins its threads at interpreter exit, so one handler
stuck past the shutdown grace period would keep the process alive after its job was released.
Daemon threads let the worker exit on time.

Threads hand their answers to the loop through `post`: answers queue up and the loop is woken
only when no drain is pending yet, so a burst of quick handlers costs one wake-up (a self-pipe
write and a loop iteration), not one each.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger("jobbie.worker")


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class DaemonThreadPool:
    """Runs callables on `size` daemon threads beside `loop`."""

    def __init__(self, size: int, name: str, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queue: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._posted: collections.deque[tuple[Callable[..., None], tuple[Any, ...]]] = (
            collections.deque()
        )
        self._drain_pending = False
        self._closed = False
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True)
            for i in range(size)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable[[], None]) -> None:
        """Call `fn()` on a pool thread; it answers through `post`. An exception it lets
        through is logged."""
        self._queue.put(fn)

    def run(self, fn: Callable[[], Any]) -> asyncio.Future[Any]:
        """Schedule `fn` on a pool thread; the future settles on the loop."""
        future: asyncio.Future[Any] = self._loop.create_future()

        def call() -> None:
            result: Any = None
            error: BaseException | None = None
            try:
                result = fn()
            except BaseException as exc:
                error = exc
            self.post(_settle, future, result, error)

        self.submit(call)
        return future

    def post(self, callback: Callable[..., None], *args: Any) -> None:
        """Call `callback(*args)` on the loop soon (safe from any thread). Posts are run in
        order, several per wake-up; none once the pool is shut down."""
        self._posted.append((callback, args))
        if self._drain_pending:
            return  # the drain scheduled already runs after this append
        self._drain_pending = True
        # The loop may be gone when a handler outlives the worker's shutdown.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._drain)

    def shutdown(self) -> None:
        """Let idle threads end; busy ones finish their call (or die with the process). What
        they post from now on is dropped: the worker run they answer is over."""
        self._closed = True
        for _ in self._threads:
            self._queue.put(None)

    def _drain(self) -> None:
        # Cleared before taking: a post that saw it set is taken below, a later one wakes us.
        self._drain_pending = False
        posted = self._posted
        while posted and not self._closed:
            callback, args = posted.popleft()
            try:
                callback(*args)
            except Exception:
                log.exception("unexpected error in %r", callback)

    def _work(self) -> None:
        while (fn := self._queue.get()) is not None:
            try:
                fn()
            except BaseException:
                log.exception("unexpected error on a handler thread")
            del fn
