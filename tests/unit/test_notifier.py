"""The in-process notifier that wakes long-poll fetches."""

from __future__ import annotations

import asyncio
import time

from jobbie.notifier import Available, Notifier, Wakes


def test_waiter_subscribed_before_notify_is_woken() -> None:
    async def scenario() -> bool:
        notifier = Notifier()
        with notifier.subscribe(["a"]) as waiter:
            asyncio.get_running_loop().call_later(0.01, notifier.notify, ["a"])
            started = time.monotonic()
            woken = await waiter.wait(5.0)
            assert time.monotonic() - started < 1.0
            return woken

    assert asyncio.run(scenario()) is True


def test_signal_before_wait_is_not_lost() -> None:
    async def scenario() -> bool:
        notifier = Notifier()
        with notifier.subscribe(["a"]) as waiter:
            notifier.notify(["a"])
            return await waiter.wait(0.01)

    assert asyncio.run(scenario()) is True


def test_waiter_on_another_queue_is_not_woken() -> None:
    async def scenario() -> bool:
        notifier = Notifier()
        with notifier.subscribe(["b"]) as waiter:
            notifier.notify(["a"])
            return await waiter.wait(0.05)

    assert asyncio.run(scenario()) is False


def test_waiter_on_several_queues_wakes_for_any() -> None:
    async def scenario() -> bool:
        notifier = Notifier()
        with notifier.subscribe(["a", "b", "c"]) as waiter:
            notifier.notify(["x", "c"])
            return await waiter.wait(1.0)

    assert asyncio.run(scenario()) is True


def test_notify_wakes_every_waiter_on_the_queue() -> None:
    async def scenario() -> list[bool]:
        notifier = Notifier()
        waiters = [notifier.subscribe(["q"]) for _ in range(3)]
        other = notifier.subscribe(["r"])
        notifier.notify(["q"])
        results = [await w.wait(1.0) for w in waiters]
        results.append(await other.wait(0.01))
        return results

    assert asyncio.run(scenario()) == [True, True, True, False]


def test_wait_times_out_returning_false() -> None:
    async def scenario() -> tuple[bool, float]:
        notifier = Notifier()
        with notifier.subscribe(["a"]) as waiter:
            started = time.monotonic()
            woken = await waiter.wait(0.1)
            return woken, time.monotonic() - started

    woken, elapsed = asyncio.run(scenario())
    assert woken is False
    assert 0.09 <= elapsed < 2.0


def test_wait_zero_does_not_block() -> None:
    async def scenario() -> tuple[bool, bool]:
        notifier = Notifier()
        waiter = notifier.subscribe(["a"])
        before = await waiter.wait(0)
        notifier.notify(["a"])
        after = await waiter.wait(0)
        return before, after

    assert asyncio.run(scenario()) == (False, True)


def test_clear_forgets_earlier_signals() -> None:
    async def scenario() -> bool:
        notifier = Notifier()
        with notifier.subscribe(["a"]) as waiter:
            notifier.notify(["a"])
            waiter.clear()
            return await waiter.wait(0.05)

    assert asyncio.run(scenario()) is False


def test_close_wakes_all_waiters() -> None:
    async def scenario() -> list[bool]:
        notifier = Notifier()
        waiters = [notifier.subscribe([q]) for q in ("a", "b", "c")]
        asyncio.get_running_loop().call_later(0.01, notifier.close)
        return list(await asyncio.gather(*(w.wait(5.0) for w in waiters)))

    assert asyncio.run(scenario()) == [True, True, True]


def test_subscription_after_close_returns_at_once() -> None:
    async def scenario() -> tuple[bool, float]:
        notifier = Notifier()
        notifier.close()
        assert notifier.closed
        with notifier.subscribe(["late"]) as waiter:
            started = time.monotonic()
            woken = await waiter.wait(5.0)
            return woken, time.monotonic() - started

    woken, elapsed = asyncio.run(scenario())
    assert woken is True
    assert elapsed < 1.0


def test_unsubscribe_forgets_the_waiter() -> None:
    async def scenario() -> tuple[int, int, bool, bool]:
        notifier = Notifier()
        other = notifier.subscribe(["a"])
        with notifier.subscribe(["a", "b"]) as waiter:
            during = notifier.waiting
        after = notifier.waiting
        notifier.notify(["a", "b"])
        return during, after, await waiter.wait(0.01), await other.wait(1)

    during, after, stale_woken, other_woken = asyncio.run(scenario())
    assert (during, after) == (2, 1)
    assert stale_woken is False
    assert other_woken is True


def test_waiting_counts_distinct_waiters() -> None:
    notifier = Notifier()
    assert notifier.waiting == 0
    first = notifier.subscribe(["a", "b", "c"])
    assert notifier.waiting == 1
    second = notifier.subscribe(["a"])
    assert notifier.waiting == 2
    notifier.unsubscribe(first)
    notifier.unsubscribe(second)
    assert notifier.waiting == 0


def test_a_count_of_new_jobs_wakes_that_many_waiters_oldest_first() -> None:
    async def scenario() -> list[bool]:
        notifier = Notifier()
        waiters = [notifier.subscribe(["q"]) for _ in range(10)]
        notifier.on_commit(Wakes(q=3))
        first = [w.signalled for w in waiters]
        # Already signalled waiters are not counted twice: the next job wakes the 4th.
        notifier.on_commit(Wakes(q=1))
        assert [w.signalled for w in waiters].count(True) == 4
        return first

    assert asyncio.run(scenario()) == [True] * 3 + [False] * 7


def test_a_waiter_leaving_with_an_unused_wake_up_hands_it_on() -> None:
    async def scenario() -> list[bool]:
        notifier = Notifier()
        leaving, staying = notifier.subscribe(["q"]), notifier.subscribe(["q"])
        notifier.on_commit(Wakes(q=1))
        assert leaving.signalled and not staying.signalled
        notifier.unsubscribe(leaving)  # timed out or its client went away
        return [staying.signalled]

    assert asyncio.run(scenario()) == [True]


def test_pass_on_wakes_one_more_waiter_per_queue() -> None:
    async def scenario() -> int:
        notifier = Notifier()
        waiters = [notifier.subscribe(["q"]) for _ in range(5)]
        notifier.pass_on(["q"])
        return sum(w.signalled for w in waiters)

    assert asyncio.run(scenario()) == 1


def test_work_available_wakes_long_polls_and_not_commit_watchers_until_told() -> None:
    """PostgreSQL wakes its long-polls at commit and its event streams once the commit's
    events have positions: a wake-up for long-polls alone, then one for the watchers alone."""

    async def scenario() -> tuple[bool, bool, bool, bool]:
        notifier = Notifier()
        with notifier.subscribe(["q"]) as waiter:
            committed = notifier.commit_event
            notifier.on_commit(Available({"q": 1}))
            polled, watched = await waiter.wait(1.0), committed.is_set()
            waiter.clear()
            notifier.on_commit(Wakes())
            return polled, watched, committed.is_set(), await waiter.wait(0.05)

    assert asyncio.run(scenario()) == (True, False, True, False)
