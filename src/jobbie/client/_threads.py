"""A small pool of daemon threads for sync handlers, answering through asyncio futures.

`concurrent.futures.ThreadPoolExecutor` joins its threads at interpreter exit, so one handler
stuck past the shutdown grace period would keep the process alive after its job was released.
Daemon threads let the worker exit on time.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any

_Item = tuple[Callable[[], Any], "asyncio.Future[Any]", asyncio.AbstractEventLoop]


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class DaemonThreadPool:
    """Runs callables on `size` daemon threads; `run` returns an awaitable future."""

    def __init__(self, size: int, name: str) -> None:
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True)
            for i in range(size)
        ]
        for thread in self._threads:
            thread.start()

    def run(self, fn: Callable[[], Any]) -> asyncio.Future[Any]:
        """Schedule `fn` on a pool thread; the future settles on the caller's loop."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.put((fn, future, loop))
        return future

    def shutdown(self) -> None:
        """Let idle threads end; busy ones finish their call (or die with the process)."""
        for _ in self._threads:
            self._queue.put(None)

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            fn, future, loop = item
            result: Any = None
            error: BaseException | None = None
            try:
                result = fn()
            except BaseException as exc:
                error = exc
            # The loop may be gone when a handler outlives the worker's shutdown.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, future, result, error)
            del item, fn, future, result, error
