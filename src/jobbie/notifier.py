"""In-process wake-ups for long-poll fetches: no sleep loop, milliseconds from commit to fetch.

A commit that says how many jobs each queue got (a mapping, as the SQLite writer passes) wakes
that many waiters of the queue, longest-waiting first, not all of them: N parked fetches and one
new job cost one claim, not N. Two fallbacks keep a job from being stranded when that count
is short (a resumed queue says 1, a waiter takes several jobs, a woken waiter leaves): a
fetch that got a full claim passes the wake-up on to one more waiter (`pass_on`), and a
waiter that leaves with an unused wake-up hands it to another.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable, Mapping
from types import TracebackType


class Wakes(Counter[str]):
    """Queues that may have work, with how many new jobs each: `add` one, `update` many."""

    def add(self, queue: str) -> None:
        self[queue] += 1


class Available(Wakes):
    """Wake-ups for long-polls only: the jobs are committed but the commit's events are not
    readable yet (PostgreSQL positions them just after), so commit watchers are told later,
    by a commit callback of their own."""


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

    @property
    def signalled(self) -> bool:
        return self._event.is_set()

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
        # Per queue, its waiters in the order they arrived (a dict keeps insertion order).
        self._by_queue: dict[str, dict[Waiter, None]] = {}
        self.closed = False
        self._commit = asyncio.Event()

    @property
    def commit_event(self) -> asyncio.Event:
        """Set by the next commit (or shutdown). Take it *before* reading, then wait on it,
        so a commit between the read and the wait is not missed."""
        return self._commit

    def on_commit(self, queues: Iterable[str] | Mapping[str, int]) -> None:
        """A write group committed: wake its queues' waiters and every commit watcher
        (not the watchers for `Available` wake-ups)."""
        self.notify(queues)
        if isinstance(queues, Available):
            return
        event, self._commit = self._commit, asyncio.Event()
        event.set()

    def subscribe(self, queues: Iterable[str]) -> Waiter:
        waiter = Waiter(self, tuple(queues))
        for queue in waiter.queues:
            self._by_queue.setdefault(queue, {})[waiter] = None
        if self.closed:
            waiter.signal()
        return waiter

    def unsubscribe(self, waiter: Waiter) -> None:
        for queue in waiter.queues:
            waiters = self._by_queue.get(queue)
            if waiters is not None:
                waiters.pop(waiter, None)
                if not waiters:
                    del self._by_queue[queue]
        if waiter.signalled and not self.closed:
            # It leaves with a wake-up it did not use (timed out or went away meanwhile).
            self.pass_on(waiter.queues)

    def notify(self, queues: Iterable[str] | Mapping[str, int]) -> None:
        """Wake waiters on these queues: as many as each queue's count when given a mapping
        of new jobs, else every one (they race; losers wait again)."""
        if isinstance(queues, Mapping):
            for queue, count in queues.items():
                self._wake(queue, count)
            return
        for queue in queues:
            for waiter in self._by_queue.get(queue, ()):
                waiter.signal()

    def pass_on(self, queues: Iterable[str]) -> None:
        """Wake one more waiter per queue: there may be work left that nobody was woken for."""
        for queue in queues:
            self._wake(queue, 1)

    def _wake(self, queue: str, count: int) -> None:
        """Signal up to `count` waiters of `queue` that are not signalled yet, oldest first."""
        for waiter in self._by_queue.get(queue, ()):
            if count <= 0:
                return
            if not waiter.signalled:
                waiter.signal()
                count -= 1

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
