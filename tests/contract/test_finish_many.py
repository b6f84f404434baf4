"""Fail batches and ack-and-fetch-next at the store: one transaction, each entry on its own,
a refused ack leases nothing, and `next` leases as a fetch would."""

from __future__ import annotations

import pytest

from jobbie.errors import JobbieError, LeaseLost, NotFound
from jobbie.models import FailResponse
from jobbie.store.base import Store
from jobbie.store.params import AckParams, FailParams, FetchParams
from tests.contract.support import (
    SECOND,
    UNKNOWN,
    decoded,
    enqueue,
    fence,
    fetch,
    fetch_one,
    job,
    json_text,
    state,
)


def claim(queue: str, count: int, worker: str = "w1") -> FetchParams:
    return FetchParams(
        queues=(queue,), worker_id=worker, hostname=None, lease_ms=60 * SECOND, count=count
    )


def acked(job_id: str, attempt: int | None = 1, worker: str = "w1") -> AckParams:
    return AckParams(job_id=job_id, result=json_text({"ok": job_id}), fence=fence(worker, attempt))


async def test_ack_next_acks_then_leases(store: Store) -> None:
    ids = [await enqueue(store, "q", n) for n in range(4)]
    await fetch_one(store, "q", worker="w1")
    status, jobs = await store.ack_next(acked(ids[0]), claim("q", 2))
    assert status == "completed"
    assert [j.job_id for j in jobs] == ids[1:3]
    assert [decoded(j.payload) for j in jobs] == [1, 2]
    assert (await job(store, ids[1])).worker is not None
    assert await state(store, ids[3]) == "pending"
    status, jobs = await store.ack_next(acked(ids[1]), claim("q", 5))
    assert [j.job_id for j in jobs] == [ids[3]]
    status, jobs = await store.ack_next(acked(ids[2]), claim("q", 5))
    assert (status, jobs) == ("completed", [])


@pytest.mark.parametrize(
    ("params", "error"),
    [
        (lambda job_id: acked(job_id, attempt=2), LeaseLost),
        (lambda job_id: acked(job_id, worker="w2"), LeaseLost),
        (lambda job_id: acked(UNKNOWN), NotFound),
    ],
)
async def test_a_refused_ack_leases_nothing(store: Store, params: object, error: type) -> None:
    job_id = await enqueue(store, "q")
    waiting = await enqueue(store, "q")
    await fetch_one(store, "q", worker="w1")
    with pytest.raises(error):
        await store.ack_next(params(job_id), claim("q", 5))  # type: ignore[operator]
    assert await state(store, job_id) == "active"
    assert await state(store, waiting) == "pending"


async def test_ack_batch_next_leases_whatever_the_results(store: Store) -> None:
    ids = [await enqueue(store, "q") for _ in range(4)]
    await fetch(store, "q", worker="w1", count=2)
    results, jobs = await store.ack_batch_next(
        [acked(ids[0]), acked(ids[1], attempt=9)], claim("q", 5)
    )
    assert results[0] == "completed" and isinstance(results[1], LeaseLost)
    assert [j.job_id for j in jobs] == ids[2:]
    assert await state(store, ids[1]) == "active"


async def test_fail_batch_each_on_its_own(store: Store) -> None:
    retried = await enqueue(store, "q", max_retries=1)
    other = await enqueue(store, "q")
    await fetch(store, "q", worker="w1", count=2)
    results = await store.fail_batch(
        [
            FailParams(job_id=retried, error="boom", fence=fence("w1", 1)),
            FailParams(job_id=other, error="not mine", fence=fence("w2", 1)),
            FailParams(job_id=retried, error="again", fence=fence("w1", 1)),
        ]
    )
    assert isinstance(results[0], FailResponse) and results[0].status == "retrying"
    assert isinstance(results[1], LeaseLost)
    assert isinstance(results[2], JobbieError)  # the first entry already failed it
    detail = await job(store, retried)
    assert [e.error for e in detail.errors] == ["boom"]  # the refused entry wrote nothing
    assert await state(store, other) == "active"
