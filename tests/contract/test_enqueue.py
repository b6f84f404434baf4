"""Enqueue: the job a user gets back, delays and schedules, unique keys, expiry, batches."""

from __future__ import annotations

import pytest

from jobbie.errors import NotFound
from jobbie.store.base import Store
from jobbie.store.params import BatchSpec
from tests.contract.support import (
    HOUR,
    SECOND,
    Commits,
    advance,
    decoded,
    enqueue,
    fetch,
    fetch_one,
    ms,
    new_job,
    run_to,
    state,
)


async def test_enqueue_stores_every_field(store: Store) -> None:
    before = store.clock.now_ms()
    answer = await store.enqueue(
        new_job(
            "emails",
            {"to": "a@example.com", "n": [1, 2]},
            priority="high",
            max_retries=5,
            backoff="linear",
            base_delay=2,
            max_delay=60,
            tags={"tenant": "acme"},
        )
    )
    after = store.clock.now_ms()
    assert answer.status == "pending" and answer.unique_existing is False
    assert answer.job_id.startswith("job_")
    job = await store.get_job(answer.job_id)
    assert job.id == answer.job_id
    assert (job.queue, job.state, job.priority, job.attempt) == ("emails", "pending", "high", 0)
    assert decoded(job.payload) == {"to": "a@example.com", "n": [1, 2]}
    assert (job.max_retries, job.retry_backoff) == (5, "linear")
    assert (job.retry_base_delay, job.retry_max_delay) == (2.0, 60.0)
    assert job.tags == {"tenant": "acme"}
    assert before <= ms(job.created_at) <= after
    assert job.scheduled_at is None and job.expire_at is None and job.started_at is None
    assert job.unique_key is None and job.unique_period is None and job.batch_id is None
    assert decoded(job.result) is None and decoded(job.checkpoint) is None
    assert job.errors == [] and job.last_error is None and job.worker is None
    assert job.cancel_requested is False
    assert [e.type for e in job.events] == ["enqueued"]


@pytest.mark.parametrize(("name", "number"), [("critical", 0), ("high", 1), ("normal", 2)])
async def test_priorities_are_kept_by_name(store: Store, name: str, number: int) -> None:
    job_id = await enqueue(store, "q", priority=name)
    assert (await store.get_job(job_id)).priority == name
    assert (await fetch_one(store, "q")).priority == name


async def test_enqueue_creates_the_queue_and_counts_it(store: Store) -> None:
    with pytest.raises(NotFound):
        await store.get_queue("fresh")
    await enqueue(store, "fresh")
    await enqueue(store, "fresh", delay=60)
    queue = await store.get_queue("fresh")
    assert queue.name == "fresh"
    assert (queue.counts.pending, queue.counts.scheduled) == (1, 1)
    assert queue.totals.enqueued == 2
    assert queue.paused is False and queue.draining is False
    assert "fresh" in [q.name for q in await store.list_queues()]


async def test_enqueue_wakes_the_queue_only_when_the_job_is_pending(
    store: Store, commits: Commits
) -> None:
    await enqueue(store, "later", delay=60)
    await enqueue(store, "now")
    assert "now" in commits.woken()


async def test_delay_schedules_the_job_until_it_is_due(store: Store, commits: Commits) -> None:
    before = store.clock.now_ms()
    answer = await store.enqueue(new_job("q", delay=30))
    after = store.clock.now_ms()
    assert answer.status == "scheduled"
    job = await store.get_job(answer.job_id)
    assert before + 30 * SECOND <= ms(job.scheduled_at) <= after + 30 * SECOND
    assert await fetch(store, "q") == []

    await advance(store, 20)
    assert await state(store, answer.job_id) == "scheduled"
    commits.clear()
    await advance(store, 11)
    assert await state(store, answer.job_id) == "pending"
    assert "q" in commits.woken()
    fetched = await fetch_one(store, "q")
    assert (fetched.job_id, fetched.attempt) == (answer.job_id, 1)
    assert "promoted" in [e.type for e in (await store.get_job(answer.job_id)).events]


async def test_scheduled_at_in_the_future_and_in_the_past(store: Store) -> None:
    now = store.clock.now_ms()
    future = await store.enqueue(new_job("q", "future", scheduled_at=now + HOUR))
    past = await store.enqueue(new_job("q", "past", scheduled_at=now - HOUR))
    assert (future.status, past.status) == ("scheduled", "pending")
    assert ms((await store.get_job(future.job_id)).scheduled_at) == now + HOUR
    assert (await fetch_one(store, "q")).job_id == past.job_id
    assert await fetch(store, "q") == []
    await advance(store, 3601)
    assert (await fetch_one(store, "q")).job_id == future.job_id


async def test_zero_delay_is_pending_at_once(store: Store) -> None:
    answer = await store.enqueue(new_job("q", delay=0))
    assert answer.status == "pending"
    assert (await fetch_one(store, "q")).job_id == answer.job_id


async def test_a_promoted_job_keeps_its_place_in_the_queue(store: Store) -> None:
    early = await enqueue(store, "q", "early", delay=10)
    late = await enqueue(store, "q", "late")
    await advance(store, 11)
    assert [j.job_id for j in await fetch(store, "q", count=5)] == [early, late]


async def test_unique_key_returns_the_unfinished_holder(store: Store) -> None:
    first = await store.enqueue(new_job("q", 1, unique_key="k"))
    again = await store.enqueue(new_job("q", 2, unique_key="k"))
    assert again.unique_existing is True
    assert (again.job_id, again.status) == (first.job_id, "pending")
    job = await store.get_job(first.job_id)
    assert (job.unique_key, job.unique_period) == ("k", 3600.0)
    assert decoded(job.payload) == 1

    await fetch_one(store, "q")
    held = await store.enqueue(new_job("q", 3, unique_key="k"))
    assert (held.job_id, held.status, held.unique_existing) == (first.job_id, "active", True)
    assert (await store.get_queue("q")).totals.enqueued == 1


async def test_unique_keys_are_per_queue(store: Store) -> None:
    a = await store.enqueue(new_job("a", unique_key="k"))
    b = await store.enqueue(new_job("b", unique_key="k"))
    assert b.unique_existing is False and b.job_id != a.job_id


@pytest.mark.parametrize("outcome", ["completed", "dead", "cancelled"])
async def test_a_finished_job_releases_its_unique_key(store: Store, outcome: str) -> None:
    first = await run_to(store, "q", outcome, unique_key="k")
    fresh = await store.enqueue(new_job("q", unique_key="k"))
    assert fresh.unique_existing is False and fresh.job_id != first


async def test_a_deleted_job_releases_its_unique_key(store: Store) -> None:
    first = await enqueue(store, "q", unique_key="k")
    await store.delete_job(first)
    fresh = await store.enqueue(new_job("q", unique_key="k"))
    assert fresh.unique_existing is False and fresh.job_id != first


async def test_unique_lock_ends_with_its_period(store: Store) -> None:
    first = await enqueue(store, "q", unique_key="k", unique_period=60)
    await advance(store, 30)
    assert (await store.enqueue(new_job("q", unique_key="k"))).job_id == first
    await advance(store, 31)
    fresh = await store.enqueue(new_job("q", unique_key="k"))
    assert fresh.unique_existing is False and fresh.job_id != first
    # The first job is still there and still runs.
    assert await state(store, first) == "pending"
    assert [j.job_id for j in await fetch(store, "q", count=5)] == [first, fresh.job_id]


async def test_expire_after_sets_expire_at_and_kills_a_job_never_started(store: Store) -> None:
    job_id = await enqueue(store, "q", expire_after=60)
    job = await store.get_job(job_id)
    assert ms(job.expire_at) - ms(job.created_at) == 60 * SECOND
    await store.pause_queue("q")
    await advance(store, 61)
    job = await store.get_job(job_id)
    assert (job.state, job.last_error, job.attempt) == ("dead", "expired", 0)
    assert "expired" in [e.type for e in job.events]
    queue = await store.get_queue("q")
    assert (queue.counts.dead, queue.counts.pending, queue.totals.dead) == (1, 0, 1)
    await store.resume_queue("q")
    assert await fetch(store, "q") == []


async def test_a_job_past_expiry_is_never_handed_out_even_before_the_sweep(store: Store) -> None:
    expired = await enqueue(store, "q", "old", expire_after=10)
    fresh = await enqueue(store, "q", "new", expire_after=3600)
    store.clock.advance(11)  # no maintenance pass: the fetch alone must refuse it
    assert [j.job_id for j in await fetch(store, "q", count=10)] == [fresh]
    job = await store.get_job(expired)
    assert (job.state, job.last_error) == ("dead", "expired")


async def test_a_scheduled_job_can_expire_before_it_is_due(store: Store) -> None:
    job_id = await enqueue(store, "q", delay=120, expire_after=60)
    await advance(store, 121)
    job = await store.get_job(job_id)
    assert (job.state, job.last_error) == ("dead", "expired")
    assert await fetch(store, "q") == []


async def test_batch_enqueue_without_a_batch_row(store: Store) -> None:
    answer = await store.enqueue_batch([new_job("q", i) for i in range(3)], None)
    assert answer.batch_id is None
    assert len(answer.job_ids) == 3
    fetched = await fetch(store, "q", count=10)
    assert [j.job_id for j in fetched] == answer.job_ids
    assert [decoded(j.payload) for j in fetched] == [0, 1, 2]
    assert (await store.get_job(answer.job_ids[0])).batch_id is None


async def test_batch_enqueue_answers_unique_duplicates_with_the_holder(store: Store) -> None:
    holder = await enqueue(store, "q", "old", unique_key="a")
    answer = await store.enqueue_batch(
        [
            new_job("q", 1, unique_key="a"),
            new_job("q", 2, unique_key="b"),
            new_job("q", 3, unique_key="b"),
            new_job("q", 4),
        ],
        BatchSpec(callback_queue=None, callback_payload="null"),
    )
    ids = answer.job_ids
    assert ids[0] == holder
    assert ids[1] == ids[2] != holder
    assert len(set(ids)) == 3
    assert answer.batch_id is not None
    batch = await store.get_batch(answer.batch_id)
    assert batch.total == 2  # only the jobs this call inserted
    assert (await store.get_job(holder)).batch_id is None
    assert (await store.get_job(ids[1])).batch_id == answer.batch_id


async def test_unknown_job_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        await store.get_job("job_01ARZ3NDEKTSV4RRFFQ69G5FAV")
