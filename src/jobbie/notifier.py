"""In-process wake-ups for long-poll fetches: no sleep loop, milliseconds from commit to fetch."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from types import TracebackType


class Waiter:
    """One long-poll's subscription to a set of queues."""

    __slots__ = ("_event", "_notifier", "queues")

    def __init__(self, notifier: Notifier, queues: tuple[str, ...]) -> None:
        self._notifier = notifier
        self._event = asyncio.Event()
        self.queues = queues

    def clear(self) -> None:
        """Forget earlier signals; call before looking for work, so none is missed after."""
        self._event.clear()

    def signal(self) -> None:
        self._event.set()

    async def wait(self, seconds: float) -> bool:
        """Wait until signalled or `seconds` pass; True when signalled."""
        if seconds <= 0:
            return self._event.is_set()
        try:
            async with asyncio.timeout(seconds):
                await self._event.wait()
        except TimeoutError:
            return False
        return True

    def __enter__(self) -> Waiter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._notifier.unsubscribe(self)


class Notifier:
    """Signals the waiters of a queue when it may have work (enqueue, promotion, retry...)."""

    def __init__(self) -> None:
        self._by_queue: dict[str, set[Waiter]] = {}
        self.closed = False
        self._commit = asyncio.Event()

    @property
    def commit_event(self) -> asyncio.Event:
        """Set by the next commit (or shutdown). Take it *before* reading, then wait on it,
        so a commit between the read and the wait is not missed."""
        return self._commit

    def on_commit(self, queues: Iterable[str]) -> None:
        """A write group committed: wake its queues' waiters and every commit watcher."""
        self.notify(queues)
        event, self._commit = self._commit, asyncio.Event()
        event.set()

    def subscribe(self, queues: Iterable[str]) -> Waiter:
        waiter = Waiter(self, tuple(queues))
        for queue in waiter.queues:
            self._by_queue.setdefault(queue, set()).add(waiter)
        if self.closed:
            waiter.signal()
        return waiter

    def unsubscribe(self, waiter: Waiter) -> None:
        for queue in waiter.queues:
            waiters = self._by_queue.get(queue)
            if waiters is not None:
                waiters.discard(waiter)
                if not waiters:
                    del self._by_queue[queue]

    def notify(self, queues: Iterable[str]) -> None:
        """Wake every waiter on these queues (they race; losers wait again)."""
        for queue in queues:
            for waiter in self._by_queue.get(queue, ()):
                waiter.signal()

    def close(self) -> None:
        """Shutting down: wake everyone, and make new subscriptions return at once."""
        self.closed = True
        self._commit.set()
        for waiters in self._by_queue.values():
            for waiter in waiters:
                waiter.signal()

    @property
    def waiting(self) -> int:
        return len({w for ws in self._by_queue.values() for w in ws})
