"""Batches: counters as their jobs finish, and the callback job, enqueued exactly once."""

from __future__ import annotations

from typing import Any

import pytest

from jobbie.errors import NotFound
from jobbie.models import Batch
from jobbie.store.base import Store
from jobbie.store.params import BatchSpec, BulkSpec
from tests.contract.support import (
    ack,
    advance,
    decoded,
    enqueue,
    fail,
    fetch,
    fetch_one,
    json_text,
    ms,
    new_job,
    search_ids,
)


async def make_batch(
    store: Store, n: int, *, callback: str | None = "cb", payload: Any = None, **options: Any
) -> tuple[str, list[str]]:
    answer = await store.enqueue_batch(
        [new_job("work", i, **options) for i in range(n)],
        BatchSpec(callback_queue=callback, callback_payload=json_text(payload)),
    )
    assert answer.batch_id is not None
    return answer.batch_id, answer.job_ids


async def callbacks(store: Store) -> list[str]:
    return await search_ids(store, queues=("cb",))


async def test_a_new_batch_and_its_counters(store: Store) -> None:
    before = store.clock.now_ms()
    batch_id, ids = await make_batch(store, 3, payload={"report": 7})
    assert batch_id.startswith("batch_")
    batch = await store.get_batch(batch_id)
    assert (batch.id, batch.state, batch.total, batch.pending) == (batch_id, "running", 3, 3)
    assert (batch.succeeded, batch.failed, batch.callback_queue) == (0, 0, "cb")
    assert decoded(batch.callback_payload) == {"report": 7}
    assert batch.callback_job_id is None and batch.completed_at is None
    assert ms(batch.created_at) >= before
    assert [(await store.get_job(job_id)).batch_id for job_id in ids] == [batch_id] * 3
    assert sorted(await search_ids(store, batch_id=batch_id)) == sorted(ids)


async def test_the_callback_fires_when_the_last_job_finishes(store: Store) -> None:
    batch_id, ids = await make_batch(store, 3, payload={"report": 7}, max_retries=0)
    fetched = await fetch(store, "work", count=3)
    await ack(store, ids[0])
    await fail(store, ids[1])
    assert await callbacks(store) == []
    batch = await store.get_batch(batch_id)
    assert (batch.pending, batch.succeeded, batch.failed, batch.state) == (1, 1, 1, "running")

    await ack(store, fetched[2].job_id)
    batch = await store.get_batch(batch_id)
    assert (batch.state, batch.pending, batch.succeeded, batch.failed) == ("completed", 0, 2, 1)
    assert batch.completed_at is not None
    [callback_id] = await callbacks(store)
    assert batch.callback_job_id == callback_id
    callback = await store.get_job(callback_id)
    assert callback.state == "pending"
    assert (callback.priority, callback.max_retries) == ("normal", 3)
    assert callback.tags == {"batch_id": batch_id}
    assert decoded(callback.payload) == {
        "batch_id": batch_id,
        "total": 3,
        "succeeded": 2,
        "failed": 1,
        "callback_payload": {"report": 7},
    }


async def test_dead_and_cancelled_jobs_count_as_failed(store: Store) -> None:
    batch_id, ids = await make_batch(store, 3, max_retries=0)
    assert await store.cancel_job(ids[0]) == "cancelled"
    await fetch(store, "work", count=2)
    await fail(store, ids[1])
    await store.cancel_job(ids[2])  # active: asked to stop
    assert (await store.get_batch(batch_id)).pending == 1
    assert await ack(store, ids[2]) == "cancelled"
    batch = await store.get_batch(batch_id)
    assert (batch.state, batch.succeeded, batch.failed) == ("completed", 0, 3)
    assert len(await callbacks(store)) == 1


async def test_a_retried_attempt_is_not_a_finish(store: Store) -> None:
    batch_id, [job_id] = await make_batch(store, 1, backoff="none")
    await fetch_one(store, "work")
    await fail(store, job_id)
    assert (await store.get_batch(batch_id)).pending == 1
    await fetch_one(store, "work")
    await ack(store, job_id)
    batch = await store.get_batch(batch_id)
    assert (batch.state, batch.succeeded, batch.failed) == ("completed", 1, 0)


async def test_a_lease_expiry_that_kills_the_job_counts_as_failed(store: Store) -> None:
    batch_id, _ = await make_batch(store, 1, max_retries=0)
    await fetch_one(store, "work", lease=10)
    await advance(store, 11)
    batch = await store.get_batch(batch_id)
    assert (batch.state, batch.failed) == ("completed", 1)
    assert len(await callbacks(store)) == 1


async def test_the_callback_fires_exactly_once(store: Store) -> None:
    batch_id, [first, second] = await make_batch(store, 2)
    await fetch(store, "work", count=2)
    await ack(store, first)
    await ack(store, second)
    done = await store.get_batch(batch_id)
    # Finished jobs run again: the batch and its callback are settled for good.
    await store.retry_job(first)
    await store.retry_job(second)
    await fetch(store, "work", count=2)
    await ack(store, first)
    await fail(store, second)
    await store.delete_job(first)
    await store.bulk(BulkSpec(action="retry", job_ids=(first, second)))
    assert await store.get_batch(batch_id) == done
    assert await callbacks(store) == [done.callback_job_id]


async def test_a_deleted_job_counts_as_failed(store: Store) -> None:
    batch_id, ids = await make_batch(store, 2)
    await store.delete_job(ids[0])
    assert (await store.get_batch(batch_id)).failed == 1
    await fetch_one(store, "work")
    await ack(store, ids[1])
    batch = await store.get_batch(batch_id)
    assert (batch.state, batch.succeeded, batch.failed) == ("completed", 1, 1)
    assert len(await callbacks(store)) == 1


@pytest.mark.parametrize("action", ["cancel", "delete"])
async def test_bulk_cancel_or_delete_finishes_the_batch(store: Store, action: str) -> None:
    batch_id, ids = await make_batch(store, 4)
    await store.bulk(BulkSpec(action=action, job_ids=tuple(ids)))
    batch = await store.get_batch(batch_id)
    assert (batch.state, batch.succeeded, batch.failed) == ("completed", 0, 4)
    [callback_id] = await callbacks(store)
    assert decoded((await store.get_job(callback_id)).payload)["failed"] == 4


async def test_clearing_the_queue_finishes_the_batch(store: Store) -> None:
    batch_id, _ = await make_batch(store, 3)
    assert await store.clear_queue("work") == 3
    batch = await store.get_batch(batch_id)
    assert (batch.state, batch.failed) == ("completed", 3)
    assert len(await callbacks(store)) == 1


async def test_a_batch_without_a_callback_queue_just_completes(store: Store) -> None:
    batch_id, [job_id] = await make_batch(store, 1, callback=None)
    await fetch_one(store, "work")
    await ack(store, job_id)
    batch: Batch = await store.get_batch(batch_id)
    assert (batch.state, batch.callback_queue, batch.callback_job_id) == ("completed", None, None)
    assert [q.name for q in await store.list_queues()] == ["work"]


async def test_a_batch_of_only_duplicates_is_complete_at_once(store: Store) -> None:
    holder = await enqueue(store, "work", unique_key="k")
    answer = await store.enqueue_batch(
        [new_job("work", unique_key="k")], BatchSpec(callback_queue="cb", callback_payload="1")
    )
    assert answer.job_ids == [holder]
    assert answer.batch_id is not None
    batch = await store.get_batch(answer.batch_id)
    assert (batch.state, batch.total) == ("completed", 0)
    assert len(await callbacks(store)) == 1


async def test_unknown_batch_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        await store.get_batch("batch_01ARZ3NDEKTSV4RRFFQ69G5FAV")
