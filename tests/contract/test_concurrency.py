"""Concurrent callers: every state change is guarded, so racing calls never both win.

The calls of each test are started together (`asyncio.gather`); a backend with many writers
(PostgreSQL) runs them truly at once, the SQLite writer in one group commit.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable
from typing import Any

from jobbie.errors import Conflict, JobbieError, LeaseLost
from jobbie.store.base import Store
from jobbie.store.params import BatchSpec
from tests.contract.support import (
    SECOND,
    ack,
    enqueue,
    fail,
    fetch,
    fetch_one,
    new_job,
    run_to,
    search_ids,
)


async def together(*calls: Awaitable[Any]) -> list[Any]:
    """Run the calls at once; each answer or the JobbieError it raised, in call order."""
    return list(await asyncio.gather(*calls, return_exceptions=True))


def outcomes(answers: list[Any]) -> Counter[str]:
    """How many calls got each answer (errors by class name)."""
    return Counter(type(a).__name__ if isinstance(a, JobbieError) else str(a) for a in answers)


async def test_racing_fetches_never_share_a_job(store: Store) -> None:
    ids = {await enqueue(store, "q", i) for i in range(10)}
    claims = await together(*(fetch(store, "q", worker=f"w{n}") for n in range(20)))
    handed = [job.job_id for claim in claims for job in claim]
    assert sorted(handed) == sorted(ids)
    assert sum(1 for claim in claims if not claim) == 10


async def test_racing_count_fetches_never_share_a_job(store: Store) -> None:
    await store.enqueue_batch([new_job("q", i) for i in range(30)], None)
    claims = await together(*(fetch(store, "q", worker=f"w{n}", count=4) for n in range(10)))
    handed = [job.job_id for claim in claims for job in claim]
    assert len(handed) == len(set(handed)) == 30


async def test_racing_fetches_respect_the_concurrency_limit(store: Store) -> None:
    await store.set_concurrency("q", 3)
    for i in range(10):
        await enqueue(store, "q", i)
    claims = await together(*(fetch(store, "q", worker=f"w{n}", count=2) for n in range(10)))
    assert sum(len(claim) for claim in claims) == 3
    assert (await store.get_queue("q")).counts.active == 3


async def test_racing_fetches_respect_the_throttle(store: Store) -> None:
    await store.set_throttle("q", 3, 60 * SECOND)
    for i in range(10):
        await enqueue(store, "q", i)
    claims = await together(*(fetch(store, "q", worker=f"w{n}") for n in range(10)))
    assert sum(len(claim) for claim in claims) == 3


async def test_racing_acks_of_one_attempt_complete_it_once(store: Store) -> None:
    job_id = await enqueue(store, "q")
    await fetch_one(store, "q", worker="w1")
    answers = await together(*(ack(store, job_id, n, worker="w1", attempt=1) for n in range(5)))
    assert outcomes(answers) == Counter({"completed": 1, "LeaseLost": 4})
    assert (await store.get_queue("q")).totals.completed == 1


async def test_ack_racing_fail_one_wins_and_the_job_shows_it(store: Store) -> None:
    job_id = await enqueue(store, "q", max_retries=0)
    await fetch_one(store, "q", worker="w1")
    acked, failed = await together(
        ack(store, job_id, "done", worker="w1", attempt=1),
        fail(store, job_id, "boom", worker="w1", attempt=1),
    )
    job = await store.get_job(job_id)
    if isinstance(acked, LeaseLost):
        assert failed.status == "dead" and job.state == "dead"
    else:
        assert acked == "completed" and isinstance(failed, LeaseLost)
        assert job.state == "completed" and job.errors == []


async def test_cancel_racing_ack_ends_in_one_consistent_state(store: Store) -> None:
    job_id = await enqueue(store, "q")
    await fetch_one(store, "q", worker="w1")
    cancelled, acked = await together(
        store.cancel_job(job_id), ack(store, job_id, worker="w1", attempt=1)
    )
    state = (await store.get_job(job_id)).state
    if isinstance(cancelled, Conflict):  # the ack came first
        assert (acked, state) == ("completed", "completed")
    else:
        assert cancelled == "cancelling"
        assert (acked, state) == ("cancelled", "cancelled")


async def test_racing_manual_retries_of_one_job_run_it_once(store: Store) -> None:
    job_id = await run_to(store, "q", "dead")
    answers = await together(*(store.retry_job(job_id) for _ in range(5)))
    assert sum(1 for a in answers if not isinstance(a, JobbieError)) == 1
    assert all(isinstance(a, Conflict) for a in answers if isinstance(a, JobbieError))
    assert len(await fetch(store, "q", count=10)) == 1


async def test_racing_unique_enqueues_make_one_job(store: Store) -> None:
    answers = await together(*(store.enqueue(new_job("q", n, unique_key="k")) for n in range(10)))
    assert len({a.job_id for a in answers}) == 1
    assert sum(1 for a in answers if not a.unique_existing) == 1
    assert len(await search_ids(store, queues=("q",))) == 1


async def test_racing_last_acks_of_a_batch_fire_one_callback(store: Store) -> None:
    answer = await store.enqueue_batch(
        [new_job("work", n) for n in range(6)],
        BatchSpec(callback_queue="cb", callback_payload="null"),
    )
    await fetch(store, "work", count=6)
    await together(*(ack(store, job_id) for job_id in answer.job_ids))
    assert len(await search_ids(store, queues=("cb",))) == 1
    assert answer.batch_id is not None
    batch = await store.get_batch(answer.batch_id)
    assert (batch.state, batch.succeeded, batch.failed) == ("completed", 6, 0)


async def test_maintenance_racing_a_late_ack_reclaims_or_completes_once(store: Store) -> None:
    job_id = await enqueue(store, "q", max_retries=0)
    await fetch_one(store, "q", worker="w1", lease=10)
    store.clock.advance(9.999)
    await together(store.maintain(), ack(store, job_id, worker="w1", attempt=1))
    job = await store.get_job(job_id)
    queue = await store.get_queue("q")
    assert job.state in ("completed", "dead")
    assert queue.totals.completed + queue.totals.dead == 1
