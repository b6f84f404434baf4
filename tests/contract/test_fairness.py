"""Fair queueing and per-key limits (`jobbie.store.fairness`), on every backend.

A job's `key` is its tenant. Round-robin queues serve keys in turn (least recently served
first, FIFO within a key, priority first across keys); per-key concurrency and throttles hold
in both modes; jobs without a key form one key of their own and are not limited per key.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from jobbie.errors import NotFound
from jobbie.store.base import Store
from tests.contract.support import SECOND, ack, advance, enqueue, fetch, new_job, search_ids


async def keyed(store: Store, queue: str, key: str | None, n: int, **options: object) -> list[str]:
    """Enqueue `n` jobs of one key in one batch; their ids in order."""
    answer = await store.enqueue_batch(
        [new_job(queue, {"key": key, "i": i}, key=key, **options) for i in range(n)],  # type: ignore[arg-type]
        None,
    )
    return answer.job_ids


async def drain_keys(store: Store, queue: str, n: int, count: int = 1) -> list[str | None]:
    """Fetch and ack `n` jobs, `count` per fetch; the key of each, in serve order."""
    served: list[str | None] = []
    while len(served) < n:
        jobs = await fetch(store, queue, count=min(count, n - len(served)))
        assert jobs, f"ran dry after {len(served)}"
        for job in jobs:
            served.append(job.key)
            await ack(store, job.job_id)
    return served


async def test_a_job_keeps_its_key_and_is_found_by_it(store: Store) -> None:
    job_id = await enqueue(store, "q", key="acme")
    other = await enqueue(store, "q", key="globex")
    assert (await store.get_job(job_id)).key == "acme"
    assert await search_ids(store, key="acme") == [job_id]
    assert await search_ids(store, key="globex") == [other]
    [fetched] = await fetch(store, "q")
    assert fetched.key == "acme"


async def test_round_robin_lets_small_keys_through_a_flood(store: Store) -> None:
    await store.set_fairness("q", "round_robin")
    await keyed(store, "q", "big", 10_000)
    for k in range(9):
        await keyed(store, "q", f"small{k}", 10)
    served = await drain_keys(store, "q", 100)
    # Ten keys in turn: every small key's ten jobs are out within the first hundred.
    assert Counter(served) == {**{f"small{k}": 10 for k in range(9)}, "big": 10}


async def test_round_robin_takes_turns_least_recently_served_first(store: Store) -> None:
    await store.set_fairness("q", "round_robin")
    await keyed(store, "q", "a", 3)
    await keyed(store, "q", "b", 3)
    await keyed(store, "q", "c", 3)
    assert await drain_keys(store, "q", 9) == ["a", "b", "c"] * 3


async def test_round_robin_is_fifo_within_a_key(store: Store) -> None:
    await store.set_fairness("q", "round_robin")
    ids = await keyed(store, "q", "a", 3)
    await keyed(store, "q", "b", 3)
    order = []
    for _ in range(6):
        [job] = await fetch(store, "q")
        if job.key == "a":
            order.append(job.job_id)
    assert order == ids


async def test_jobs_without_a_key_form_one_key(store: Store) -> None:
    await store.set_fairness("q", "round_robin")
    await keyed(store, "q", None, 4)
    await keyed(store, "q", "a", 4)
    served = await drain_keys(store, "q", 4)
    assert Counter(served) == {None: 2, "a": 2}


async def test_priority_wins_across_keys(store: Store) -> None:
    await store.set_fairness("q", "round_robin")
    await keyed(store, "q", "a", 3)
    urgent = await keyed(store, "q", "b", 2, priority="critical")
    first = [job.job_id for job in await fetch(store, "q", count=2)]
    assert first == urgent


async def test_keys_with_no_ready_jobs_are_skipped(store: Store) -> None:
    await store.set_fairness("q", "round_robin")
    await keyed(store, "q", "later", 3, delay=60)
    await keyed(store, "q", "now", 3)
    assert await drain_keys(store, "q", 3) == ["now"] * 3
    assert await fetch(store, "q") == []


async def test_a_batched_fetch_takes_at_most_its_share_from_one_key(store: Store) -> None:
    await store.set_fairness("q", "round_robin")
    await keyed(store, "q", "big", 50)
    for k in range(4):
        await keyed(store, "q", f"k{k}", 5)
    jobs = await fetch(store, "q", count=10)
    # count 10 over 5 keys: ceil(10 / 5) = 2 from each.
    assert Counter(job.key for job in jobs) == {"big": 2, "k0": 2, "k1": 2, "k2": 2, "k3": 2}
    # Once the small keys run dry, the big one may fill the fetch.
    rest = await fetch(store, "q", count=30)
    assert Counter(job.key for job in rest) == {"big": 18, "k0": 3, "k1": 3, "k2": 3, "k3": 3}


async def test_switching_back_to_fifo_restores_fifo_order(store: Store) -> None:
    await store.set_fairness("q", "round_robin")
    a = await keyed(store, "q", "a", 3)
    b = await keyed(store, "q", "b", 3)
    [first] = await fetch(store, "q")
    assert first.job_id == a[0]
    queue = await store.set_fairness("q", "fifo")
    assert queue.fairness == "fifo"
    served = [job.job_id for job in await fetch(store, "q", count=5)]
    assert served == a[1:] + b


async def test_per_key_concurrency_holds_in_both_modes(store: Store) -> None:
    for mode in ("fifo", "round_robin"):
        queue = f"q-{mode}"
        await store.set_fairness(queue, mode)
        answer = await store.set_key_concurrency(queue, 2)
        assert answer.key_concurrency == 2
        await keyed(store, queue, "a", 5)
        await keyed(store, queue, "b", 5)
        await keyed(store, queue, None, 3)
        jobs = await fetch(store, queue, count=20)
        counts = Counter(job.key for job in jobs)
        # Jobs without a key are not limited per key.
        assert counts == {"a": 2, "b": 2, None: 3}, mode
        assert await fetch(store, queue, count=20) == []
        await ack(store, next(job.job_id for job in jobs if job.key == "a"))
        [more] = await fetch(store, queue, count=20)
        assert more.key == "a"


async def test_fifo_with_a_key_at_its_limit_serves_the_next_key_in_order(store: Store) -> None:
    await store.set_key_concurrency("q", 1)
    a = await keyed(store, "q", "a", 3)
    b = await keyed(store, "q", "b", 2)
    served = [job.job_id for job in await fetch(store, "q", count=5)]
    assert served == [a[0], b[0]]


async def test_per_key_concurrency_holds_under_racing_fetches(store: Store) -> None:
    await store.set_fairness("q", "round_robin")
    await store.set_key_concurrency("q", 2)
    for k in range(4):
        await keyed(store, "q", f"k{k}", 20)
    claims = await asyncio.gather(*(fetch(store, "q", worker=f"w{n}", count=3) for n in range(8)))
    counts = Counter(job.key for claim in claims for job in claim)
    assert counts == {f"k{k}": 2 for k in range(4)}


async def test_per_key_throttle_holds_its_rate(store: Store) -> None:
    queue = await store.set_key_throttle("q", 2, 10 * SECOND)
    assert queue.key_throttle is not None
    assert (queue.key_throttle.rate, queue.key_throttle.period) == (2, 10.0)
    await keyed(store, "q", "a", 5)
    await keyed(store, "q", "b", 5)
    first = await fetch(store, "q", count=10)
    assert Counter(job.key for job in first) == {"a": 2, "b": 2}
    for job in first:
        await ack(store, job.job_id)
    assert await fetch(store, "q", count=10) == []
    await advance(store, 11)
    again = await fetch(store, "q", count=10)
    assert Counter(job.key for job in again) == {"a": 2, "b": 2}
    cleared = await store.set_key_throttle("q", None, None)
    assert cleared.key_throttle is None
    assert len(await fetch(store, "q", count=10)) == 2


async def test_queue_wide_limits_still_hold_with_keys(store: Store) -> None:
    await store.set_fairness("q", "round_robin")
    await store.set_concurrency("q", 3)
    await keyed(store, "q", "a", 5)
    await keyed(store, "q", "b", 5)
    assert len(await fetch(store, "q", count=10)) == 3


async def test_a_fetch_over_several_queues_applies_each_queues_mode(store: Store) -> None:
    await store.set_fairness("fair", "round_robin")
    fair_a = await keyed(store, "fair", "a", 3)
    fair_b = await keyed(store, "fair", "b", 3)
    plain_a = await keyed(store, "plain", "a", 2)
    jobs = await fetch(store, "fair", "plain", count=8)
    fair = [job.job_id for job in jobs if job.queue == "fair"]
    plain = [job.job_id for job in jobs if job.queue == "plain"]
    assert fair == [fair_a[0], fair_b[0], fair_a[1], fair_b[1], fair_a[2], fair_b[2]]
    assert plain == plain_a


async def test_the_busiest_keys_are_listed_with_their_counts(store: Store) -> None:
    await keyed(store, "q", "big", 5)
    await keyed(store, "q", "small", 2)
    await keyed(store, "q", None, 3)
    jobs = await fetch(store, "q", count=6)
    done = next(job for job in jobs if job.key == "big")
    await ack(store, done.job_id)
    listed = {
        k.key: (k.pending, k.active, k.completed_last_minute)
        for k in await store.queue_keys("q", 20)
    }
    assert listed == {"big": (0, 4, 1), "small": (1, 1, 0)}
    top = await store.queue_keys("q", 1)
    assert [k.key for k in top] == ["small"]
    backlog = await store.keys_with_backlog()
    assert backlog == {"q": 1}
    with pytest.raises(NotFound):
        await store.queue_keys("nowhere", 20)


async def test_keys_with_no_jobs_left_are_pruned(store: Store) -> None:
    await store.set_fairness("q", "round_robin")
    for k in range(20):
        await keyed(store, "q", f"one-off{k}", 1)
    for job in await fetch(store, "q", count=20):
        await ack(store, job.job_id)
    assert await store.queue_keys("q", 100) == []
    # Two minutes on, the keys' turns, counters and per-minute completions all go, and
    # nothing is left for the next pass.
    report = await advance(store, 120)
    assert report["key_records_pruned"] >= 20 * 3
    assert (await advance(store, 1))["key_records_pruned"] == 0
    await keyed(store, "q", "one-off3", 1)
    [job] = await fetch(store, "q")
    assert job.key == "one-off3"


async def test_keyed_and_unkeyed_jobs_move_and_delete_cleanly(store: Store) -> None:
    ids = await keyed(store, "q", "a", 3)
    await store.move_job(ids[0], "other")
    await store.delete_job(ids[1])
    assert {(k.key, k.pending) for k in await store.queue_keys("q", 20)} == {("a", 1)}
    assert {(k.key, k.pending) for k in await store.queue_keys("other", 20)} == {("a", 1)}
