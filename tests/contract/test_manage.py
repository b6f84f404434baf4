"""Operator actions on jobs and queues: cancel, retry, move, delete, clear, delete queue."""

from __future__ import annotations

import pytest

from jobbie.errors import Conflict, JobbieError, NotFound
from jobbie.store.base import Store
from tests.contract.support import (
    UNKNOWN,
    Commits,
    ack,
    advance,
    decoded,
    enqueue,
    fetch,
    fetch_one,
    heartbeat,
    jobs_in_every_state,
    ms,
    run_to,
    state,
)


@pytest.mark.parametrize("waiting", ["pending", "scheduled", "retrying"])
async def test_cancel_a_waiting_job(store: Store, waiting: str) -> None:
    job_id = (await jobs_in_every_state(store, "q"))[waiting]
    before = store.clock.now_ms()
    assert await store.cancel_job(job_id) == "cancelled"
    job = await store.get_job(job_id)
    assert job.state == "cancelled"
    assert ms(job.completed_at) >= before
    assert job.events[-1].type == "cancelled"
    counts = (await store.get_queue("q")).counts
    assert getattr(counts, waiting) == 0 and counts.cancelled == 2
    await advance(store, 7200)  # past the scheduled and retrying jobs' times
    assert job_id not in [j.job_id for j in await fetch(store, "q", count=10)]


async def test_cancel_an_active_job_is_heard_on_the_heartbeat(store: Store) -> None:
    job_id = await enqueue(store, "q")
    await fetch_one(store, "q", worker="w1")
    assert await store.cancel_job(job_id) == "cancelling"
    job = await store.get_job(job_id)
    assert (job.state, job.cancel_requested) == ("active", True)
    assert await heartbeat(store, {job_id: {"attempt": 1}}) == {job_id: "cancel"}
    assert await ack(store, job_id, "partial", worker="w1", attempt=1) == "cancelled"
    job = await store.get_job(job_id)
    assert job.state == "cancelled"
    assert job.events[-1].type == "cancelled"
    queue = await store.get_queue("q")
    assert (queue.counts.cancelled, queue.counts.active, queue.totals.completed) == (1, 0, 0)


@pytest.mark.parametrize("finished", ["completed", "dead", "cancelled"])
async def test_cancel_a_finished_job_is_a_conflict(store: Store, finished: str) -> None:
    job_id = await run_to(store, "q", finished)
    with pytest.raises(Conflict):
        await store.cancel_job(job_id)
    assert await state(store, job_id) == finished


@pytest.mark.parametrize("finished", ["completed", "dead", "cancelled"])
async def test_retry_runs_a_finished_job_again_from_scratch(
    store: Store, finished: str, commits: Commits
) -> None:
    job_id = await run_to(store, "q", finished)
    commits.clear()
    job = await store.retry_job(job_id)
    assert (job.id, job.state, job.attempt) == (job_id, "pending", 0)
    assert decoded(job.result) is None and decoded(job.checkpoint) is None
    assert job.completed_at is None and job.progress is None
    assert "q" in commits.woken()
    assert (await fetch_one(store, "q")).attempt == 1
    if finished == "dead":
        assert [e.error for e in job.errors] == ["boom"]  # the history stays


@pytest.mark.parametrize("waiting", ["pending", "scheduled", "retrying", "active"])
async def test_retry_of_an_unfinished_job_is_a_conflict(store: Store, waiting: str) -> None:
    job_id = (await jobs_in_every_state(store, "q"))[waiting]
    with pytest.raises(Conflict):
        await store.retry_job(job_id)
    assert await state(store, job_id) == waiting


async def test_retry_drops_an_expiry_that_has_passed(store: Store) -> None:
    job_id = await enqueue(store, "q", expire_after=10)
    await advance(store, 11)
    assert await state(store, job_id) == "dead"
    job = await store.retry_job(job_id)
    assert (job.state, job.expire_at) == ("pending", None)
    assert (await fetch_one(store, "q")).job_id == job_id


async def test_move_a_job_to_another_queue(store: Store, commits: Commits) -> None:
    job_id = await enqueue(store, "a", {"n": 1})
    commits.clear()
    job = await store.move_job(job_id, "b")
    assert (job.queue, job.state) == ("b", "pending")
    assert "b" in commits.woken()
    moved = job.events[-1]
    assert (moved.type, moved.data) == ("moved", {"from": "a", "to": "b"})
    assert await fetch(store, "a") == []
    assert (await fetch_one(store, "b")).job_id == job_id
    assert (await store.get_queue("a")).counts.pending == 0
    assert (await store.get_queue("b")).counts.active == 1


@pytest.mark.parametrize("source", ["pending", "scheduled", "retrying", "completed", "dead"])
async def test_move_keeps_the_state_of_a_job_that_is_not_active(store: Store, source: str) -> None:
    job_id = (await jobs_in_every_state(store, "q"))[source]
    job = await store.move_job(job_id, "elsewhere")
    assert (job.queue, job.state) == ("elsewhere", source)
    assert getattr((await store.get_queue("elsewhere")).counts, source) == 1


async def test_move_of_an_active_job_is_a_conflict(store: Store) -> None:
    job_id = await enqueue(store, "a")
    await fetch_one(store, "a")
    with pytest.raises(Conflict):
        await store.move_job(job_id, "b")
    assert (await store.get_job(job_id)).queue == "a"


async def test_delete_a_job(store: Store) -> None:
    job_id = await enqueue(store, "q", unique_key="k")
    await store.delete_job(job_id)
    with pytest.raises(NotFound):
        await store.get_job(job_id)
    assert (await store.get_queue("q")).counts.pending == 0
    with pytest.raises(NotFound):
        await store.delete_job(job_id)


async def test_actions_on_an_unknown_job_are_not_found(store: Store) -> None:
    for call in (
        store.cancel_job(UNKNOWN),
        store.retry_job(UNKNOWN),
        store.move_job(UNKNOWN, "q"),
        store.delete_job(UNKNOWN),
    ):
        with pytest.raises(NotFound):
            await call


async def test_a_nul_character_in_a_job_id_is_a_client_error(store: Store) -> None:
    """No stored id holds U+0000: SQLite finds none, PostgreSQL refuses the text; never 5xx."""
    odd = (await enqueue(store, "q")) + "\x00"
    for call in (
        store.get_job(odd),
        store.cancel_job(odd),
        store.retry_job(odd),
        store.move_job(odd, "q"),
        store.delete_job(odd),
    ):
        with pytest.raises(JobbieError) as raised:
            await call
        assert raised.value.status in (400, 404)


async def test_clear_deletes_only_the_waiting_jobs(store: Store) -> None:
    jobs = await jobs_in_every_state(store, "q")
    other = await enqueue(store, "other")
    assert await store.clear_queue("q") == 3
    for name in ("pending", "scheduled", "retrying"):
        with pytest.raises(NotFound):
            await store.get_job(jobs[name])
    for name in ("active", "completed", "dead", "cancelled"):
        assert await state(store, jobs[name]) == name
    counts = (await store.get_queue("q")).counts
    assert (counts.pending, counts.scheduled, counts.retrying, counts.active) == (0, 0, 0, 1)
    assert await state(store, other) == "pending"
    assert await store.clear_queue("q") == 0


async def test_delete_queue_deletes_it_and_all_its_jobs(store: Store) -> None:
    jobs = await jobs_in_every_state(store, "q")
    other = await enqueue(store, "other")
    await store.pause_queue("q")
    assert await store.delete_queue("q") == 7
    for job_id in jobs.values():
        with pytest.raises(NotFound):
            await store.get_job(job_id)
    with pytest.raises(NotFound):
        await store.get_queue("q")
    assert [q.name for q in await store.list_queues()] == ["other"]
    assert await state(store, other) == "pending"
    # The name can be used again, with nothing left of the old queue.
    await enqueue(store, "q")
    queue = await store.get_queue("q")
    assert (queue.paused, queue.totals.enqueued, queue.counts.pending) == (False, 1, 1)


async def test_clear_and_delete_of_an_unknown_queue_are_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        await store.clear_queue("nowhere")
    with pytest.raises(NotFound):
        await store.delete_queue("nowhere")


async def test_queue_listing_counts_totals_and_limits(store: Store) -> None:
    await jobs_in_every_state(store, "b")
    await store.set_concurrency("a", 3)
    await store.set_throttle("a", 5, 60_000)
    queues = await store.list_queues()
    assert [q.name for q in queues] == ["a", "b"]
    a, b = queues
    assert (a.max_concurrency, a.throttle and a.throttle.rate, a.oldest_pending_age) == (3, 5, None)
    assert a.counts.pending == 0 and a.totals.enqueued == 0
    counts = b.counts
    assert (counts.pending, counts.scheduled, counts.active, counts.retrying) == (1, 1, 1, 1)
    assert (counts.completed, counts.dead, counts.cancelled) == (1, 1, 1)
    assert (b.totals.enqueued, b.totals.completed, b.totals.failed, b.totals.dead) == (7, 1, 2, 1)
    assert b.oldest_pending_age is not None and b.oldest_pending_age >= 0
    await advance(store, 100)
    aged = await store.get_queue("b")
    assert aged.oldest_pending_age is not None and aged.oldest_pending_age >= 100


async def test_ping(store: Store) -> None:
    await store.ping()
    assert store.backend in ("sqlite", "postgres")
    assert all(isinstance(value, str) for value in store.describe().values())
