"""`DaemonThreadPool`: calls on daemon threads, their answers posted to the loop in batches."""

from __future__ import annotations

import asyncio
import functools
import threading
from typing import Any

import pytest

from jobbie.client._threads import DaemonThreadPool


def test_posts_from_many_threads_all_arrive_in_order_with_one_wake_up() -> None:
    async def main() -> tuple[dict[int, list[int]], int]:
        loop = asyncio.get_running_loop()
        wake_ups = 0
        schedule = loop.call_soon_threadsafe

        def counting(callback: Any, *args: Any) -> Any:
            nonlocal wake_ups
            wake_ups += 1
            return schedule(callback, *args)

        loop.call_soon_threadsafe = counting  # type: ignore[method-assign,assignment]
        pool = DaemonThreadPool(4, "test-pool", loop)
        got: dict[int, list[int]] = {k: [] for k in range(4)}
        finished = [threading.Event() for _ in range(4)]

        def post_many(k: int) -> None:
            for n in range(500):
                pool.post(got[k].append, n)
            finished[k].set()

        for k in range(4):
            pool.submit(functools.partial(post_many, k))
        # The loop is held up while every thread posts: all 2,000 wait for one drain.
        for event in finished:
            assert event.wait(10)
        await asyncio.sleep(0)
        pool.shutdown()
        return got, wake_ups

    got, wake_ups = asyncio.run(main())
    assert got == {k: list(range(500)) for k in range(4)}
    assert wake_ups == 1


def test_run_settles_with_the_result_or_the_exception() -> None:
    def fail() -> None:
        raise ValueError("from the thread")

    async def main() -> int:
        pool = DaemonThreadPool(2, "test-pool", asyncio.get_running_loop())
        try:
            with pytest.raises(ValueError, match="from the thread"):
                await pool.run(fail)
            result: int = await pool.run(lambda: 6 * 7)
            return result
        finally:
            pool.shutdown()

    assert asyncio.run(main()) == 42


def test_posts_after_shutdown_are_dropped() -> None:
    async def main() -> list[str]:
        pool = DaemonThreadPool(1, "test-pool", asyncio.get_running_loop())
        got: list[str] = []
        pool.post(got.append, "before")
        await asyncio.sleep(0)
        pool.shutdown()
        pool.post(got.append, "after")
        await asyncio.sleep(0.05)
        return got

    assert asyncio.run(main()) == ["before"]
