"""Fetch: claim order, counts, pause and drain, concurrency limits, throttles, workers."""

from __future__ import annotations

import pytest

from jobbie.errors import NotFound
from jobbie.models import Throttle
from jobbie.store.base import Store
from jobbie.store.params import FetchParams
from tests.contract.support import (
    SECOND,
    Commits,
    ack,
    advance,
    decoded,
    enqueue,
    fetch,
    fetch_one,
    ms,
    release,
)


async def test_nothing_to_fetch(store: Store) -> None:
    claim = await store.fetch(
        FetchParams(queues=("empty",), worker_id="w1", hostname=None, lease_ms=60_000, count=5)
    )
    assert claim.jobs == [] and claim.retry_at is None


async def test_fetched_job_and_its_lease(store: Store) -> None:
    job_id = await enqueue(
        store, "q", {"a": 1}, priority="critical", max_retries=7, tags={"t": "1"}
    )
    before = store.clock.now_ms()
    fetched = await fetch_one(store, "q", worker="w-1", hostname="host-a", lease=30)
    after = store.clock.now_ms()
    assert (fetched.job_id, fetched.queue, fetched.attempt) == (job_id, "q", 1)
    assert decoded(fetched.payload) == {"a": 1}
    assert (fetched.max_retries, fetched.priority, fetched.tags) == (7, "critical", {"t": "1"})
    assert fetched.lease_duration == 30.0
    assert decoded(fetched.checkpoint) is None

    job = await store.get_job(job_id)
    assert fetched.created_at == job.created_at
    assert (job.state, job.attempt) == ("active", 1)
    assert job.worker is not None
    assert (job.worker.id, job.worker.hostname) == ("w-1", "host-a")
    assert before <= ms(job.started_at) <= after
    assert ms(job.lease_expires_at) - ms(job.started_at) == 30 * SECOND
    assert "started" in [e.type for e in job.events]
    queue = await store.get_queue("q")
    assert (queue.counts.pending, queue.counts.active) == (0, 1)


async def test_fifo_within_a_queue(store: Store) -> None:
    ids = [await enqueue(store, "q", i) for i in range(5)]
    assert [(await fetch_one(store, "q")).job_id for _ in ids] == ids
    assert await fetch(store, "q") == []


async def test_priority_first_then_enqueue_order_across_queues(store: Store) -> None:
    a_normal = await enqueue(store, "a", priority="normal")
    b_high = await enqueue(store, "b", priority="high")
    a_critical = await enqueue(store, "a", priority="critical")
    b_normal = await enqueue(store, "b", priority="normal")
    a_high = await enqueue(store, "a", priority="high")
    order = [(await fetch_one(store, "a", "b")).job_id for _ in range(5)]
    assert order == [a_critical, b_high, a_high, a_normal, b_normal]


async def test_count_takes_several_jobs_in_claim_order(store: Store) -> None:
    normal = [await enqueue(store, "a", i) for i in range(3)]
    high = await enqueue(store, "b", priority="high")
    jobs = await fetch(store, "a", "b", count=3)
    assert [j.job_id for j in jobs] == [high, normal[0], normal[1]]
    assert all(j.attempt == 1 for j in jobs)
    rest = await fetch(store, "a", "b", count=10)
    assert [j.job_id for j in rest] == [normal[2]]


async def test_only_the_named_queues_are_served(store: Store) -> None:
    await enqueue(store, "other")
    assert await fetch(store, "q") == []


async def test_paused_queue_is_skipped_and_resume_serves_it(store: Store, commits: Commits) -> None:
    job_id = await enqueue(store, "q")
    other = await enqueue(store, "q.b")
    paused = await store.pause_queue("q")
    assert paused.name == "q" and paused.paused is True
    assert paused.counts.pending == 1
    assert [j.job_id for j in await fetch(store, "q", "q.b", count=5)] == [other]
    assert await fetch(store, "q") == []

    commits.clear()
    resumed = await store.resume_queue("q")
    assert resumed.paused is False
    assert "q" in commits.woken()
    assert (await fetch_one(store, "q")).job_id == job_id


async def test_pause_before_the_first_job_creates_the_queue(store: Store) -> None:
    assert (await store.pause_queue("new")).paused is True
    assert (await store.get_queue("new")).paused is True
    await enqueue(store, "new")
    assert await fetch(store, "new") == []


async def test_drain_waits_for_active_jobs_then_pauses(store: Store) -> None:
    running = await enqueue(store, "q")
    waiting = await enqueue(store, "q")
    await fetch_one(store, "q")
    drained = await store.drain_queue("q")
    assert (drained.draining, drained.paused) == (True, False)
    assert await fetch(store, "q") == []

    await advance(store, 1)
    assert (await store.get_queue("q")).draining is True
    assert await ack(store, running) == "completed"
    await advance(store, 1)
    queue = await store.get_queue("q")
    assert (queue.draining, queue.paused) == (False, True)
    assert queue.counts.pending == 1

    await store.resume_queue("q")
    assert (await fetch_one(store, "q")).job_id == waiting


async def test_drain_of_an_idle_queue_pauses_it_at_once(store: Store) -> None:
    await enqueue(store, "q")
    queue = await store.drain_queue("q")
    assert (queue.draining, queue.paused) == (False, True)


async def test_resume_ends_a_drain(store: Store) -> None:
    await enqueue(store, "q")
    await fetch_one(store, "q")
    await enqueue(store, "q")
    await store.drain_queue("q")
    queue = await store.resume_queue("q")
    assert (queue.draining, queue.paused) == (False, False)
    assert len(await fetch(store, "q")) == 1


async def test_drain_of_an_unknown_queue_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        await store.drain_queue("nowhere")


async def test_concurrency_limit_holds_across_workers(store: Store, commits: Commits) -> None:
    queue = await store.set_concurrency("q", 1)
    assert queue.max_concurrency == 1
    first = await enqueue(store, "q")
    second = await enqueue(store, "q")
    assert (await fetch_one(store, "q", worker="w1")).job_id == first
    assert await fetch(store, "q", worker="w2") == []
    assert await fetch(store, "q", worker="w2", count=5) == []

    commits.clear()
    await ack(store, first)
    assert "q" in commits.woken()  # a slot freed: waiters must look again
    assert (await fetch_one(store, "q", worker="w2")).job_id == second


async def test_concurrency_limit_caps_a_count_fetch_and_can_be_lifted(store: Store) -> None:
    await store.set_concurrency("q", 2)
    for i in range(5):
        await enqueue(store, "q", i)
    assert [decoded(j.payload) for j in await fetch(store, "q", count=10)] == [0, 1]
    assert await fetch(store, "q", count=10) == []
    assert (await store.set_concurrency("q", None)).max_concurrency is None
    assert [decoded(j.payload) for j in await fetch(store, "q", count=10)] == [2, 3, 4]


async def test_a_released_job_frees_its_concurrency_slot(store: Store) -> None:
    await store.set_concurrency("q", 1)
    first = await enqueue(store, "q")
    await enqueue(store, "q")
    await fetch_one(store, "q")
    await release(store, first)
    assert (await fetch_one(store, "q")).job_id == first


async def test_throttle_hands_out_rate_jobs_per_window(store: Store) -> None:
    queue = await store.set_throttle("q", 2, 10 * SECOND)
    assert queue.throttle == Throttle(rate=2, period=10.0)
    for i in range(7):
        await enqueue(store, "q", i)

    start = store.clock.now_ms()
    assert [decoded(j.payload) for j in await fetch(store, "q", count=10)] == [0, 1]
    claim = await store.fetch(
        FetchParams(queues=("q",), worker_id="w2", hostname=None, lease_ms=60_000, count=10)
    )
    # Nothing more for any worker within the window; the answer says when it reopens.
    assert claim.jobs == []
    assert claim.retry_at is not None
    assert start + 10 * SECOND <= claim.retry_at <= store.clock.now_ms() + 10 * SECOND

    await advance(store, 5)
    assert await fetch(store, "q", count=10) == []
    await advance(store, 6)
    assert [decoded(j.payload) for j in await fetch(store, "q", count=10)] == [2, 3]

    assert (await store.set_throttle("q", None, None)).throttle is None
    assert [decoded(j.payload) for j in await fetch(store, "q", count=10)] == [4, 5, 6]


async def test_throttle_window_slides(store: Store) -> None:
    await store.set_throttle("q", 2, 10 * SECOND)
    for i in range(4):
        await enqueue(store, "q", i)
    assert len(await fetch(store, "q")) == 1
    await advance(store, 6)
    assert len(await fetch(store, "q")) == 1
    assert await fetch(store, "q") == []
    # The first hand-out leaves the window 10 s after it was made, the second 4 s later.
    await advance(store, 5)
    assert len(await fetch(store, "q", count=10)) == 1
    assert await fetch(store, "q") == []
    await advance(store, 5)
    assert len(await fetch(store, "q", count=10)) == 1


async def test_fetch_records_the_worker(store: Store) -> None:
    a = await enqueue(store, "a")
    await enqueue(store, "b")
    await fetch_one(store, "a", "b", worker="w-9", hostname="box", count=1)
    await fetch(store, "a", "b", worker="w-9", hostname="box", count=1)
    workers = {w.id: w for w in await store.list_workers()}
    assert set(workers) == {"w-9"}
    info = workers["w-9"]
    assert (info.hostname, sorted(info.queues), info.active_jobs) == ("box", ["a", "b"], 2)
    await ack(store, a)
    [info] = await store.list_workers()
    assert info.active_jobs == 1
    assert ms(info.started_at) <= ms(info.last_seen)
