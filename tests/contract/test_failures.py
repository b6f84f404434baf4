"""Failed attempts: retries with each backoff, the dead letter, release, checkpoints."""

from __future__ import annotations

import pytest

from jobbie.store.base import Store
from tests.contract.support import (
    SECOND,
    Commits,
    ack,
    advance,
    decoded,
    enqueue,
    fail,
    fetch,
    fetch_one,
    heartbeat,
    ms,
    release,
    state,
)


async def test_fail_schedules_a_retry_with_the_error_recorded(store: Store) -> None:
    job_id = await enqueue(store, "q", {"x": 1}, max_retries=2, backoff="fixed", base_delay=30)
    await fetch_one(store, "q", worker="w1")
    before = store.clock.now_ms()
    answer = await fail(store, job_id, "refused", backtrace="Traceback: 1", worker="w1", attempt=1)
    after = store.clock.now_ms()
    assert (answer.status, answer.attempts_remaining) == ("retrying", 2)
    assert before + 30 * SECOND <= ms(answer.next_attempt_at) <= after + 30 * SECOND

    job = await store.get_job(job_id)
    assert (job.state, job.last_error, job.attempt) == ("retrying", "refused", 1)
    assert before <= ms(job.failed_at) <= after
    assert job.completed_at is None and job.lease_expires_at is None
    [error] = job.errors
    assert (error.attempt, error.error, error.backtrace) == (1, "refused", "Traceback: 1")
    assert before <= ms(error.at) <= after
    assert ms(job.scheduled_at) == ms(answer.next_attempt_at)
    assert [e.type for e in job.events][-2:] == ["failed", "retrying"]
    queue = await store.get_queue("q")
    assert (queue.counts.retrying, queue.counts.active, queue.totals.failed) == (1, 0, 1)

    assert await fetch(store, "q") == []
    await advance(store, 31)
    assert await state(store, job_id) == "pending"
    second = await fetch_one(store, "q", worker="w2")
    assert (second.job_id, second.attempt, decoded(second.payload)) == (job_id, 2, {"x": 1})
    assert await ack(store, job_id, "ok", worker="w2", attempt=2) == "completed"
    job = await store.get_job(job_id)
    assert (job.state, job.attempt, len(job.errors)) == ("completed", 2, 1)
    totals = (await store.get_queue("q")).totals
    assert (totals.enqueued, totals.completed, totals.failed, totals.dead) == (1, 1, 1, 0)


@pytest.mark.parametrize(
    ("backoff", "delays"),
    [
        ("fixed", [10, 10, 10, 10]),
        ("linear", [10, 20, 30, 40]),
        ("exponential", [10, 20, 40, 50]),  # 80 capped at the 50 s maximum
    ],
)
async def test_each_backoff_delays_the_retry(store: Store, backoff: str, delays: list[int]) -> None:
    job_id = await enqueue(store, "q", max_retries=4, backoff=backoff, base_delay=10, max_delay=50)
    seen = []
    for attempt, delay in enumerate(delays, start=1):
        assert (await fetch_one(store, "q")).attempt == attempt
        before = store.clock.now_ms()
        answer = await fail(store, job_id, f"e{attempt}", attempt=attempt)
        after = store.clock.now_ms()
        assert answer.status == "retrying"
        at = ms(answer.next_attempt_at)
        assert before + delay * SECOND <= at <= after + delay * SECOND
        seen.append(delay)
        await advance(store, delay - 1)
        assert await fetch(store, "q") == [], f"retry {attempt} ran before its delay"
        await advance(store, 2)
    assert seen == delays
    assert (await fetch_one(store, "q")).attempt == 5


async def test_no_backoff_makes_the_job_pending_at_once(store: Store, commits: Commits) -> None:
    job_id = await enqueue(store, "q", backoff="none")
    await fetch_one(store, "q")
    before = store.clock.now_ms()
    commits.clear()
    answer = await fail(store, job_id)
    assert answer.status == "retrying"
    assert before <= ms(answer.next_attempt_at) <= store.clock.now_ms()
    assert await state(store, job_id) == "pending"
    assert "q" in commits.woken()
    assert (await fetch_one(store, "q")).attempt == 2


async def test_dead_after_the_retries_are_used(store: Store) -> None:
    job_id = await enqueue(store, "q", max_retries=2, backoff="none")
    answers = []
    for attempt in (1, 2, 3):
        assert (await fetch_one(store, "q")).attempt == attempt
        answers.append(await fail(store, job_id, f"error {attempt}", backtrace=f"bt {attempt}"))
    assert [a.status for a in answers] == ["retrying", "retrying", "dead"]
    assert [a.attempts_remaining for a in answers] == [2, 1, 0]
    assert answers[2].next_attempt_at is None

    job = await store.get_job(job_id)
    assert (job.state, job.attempt, job.last_error) == ("dead", 3, "error 3")
    assert [(e.attempt, e.error, e.backtrace) for e in job.errors] == [
        (1, "error 1", "bt 1"),
        (2, "error 2", "bt 2"),
        (3, "error 3", "bt 3"),
    ]
    assert job.completed_at is not None
    assert [e.type for e in job.events][-2:] == ["failed", "dead"]
    queue = await store.get_queue("q")
    assert (queue.counts.dead, queue.totals.failed, queue.totals.dead) == (1, 3, 1)
    assert await fetch(store, "q") == []


async def test_no_retries_means_dead_at_the_first_failure(store: Store) -> None:
    job_id = await enqueue(store, "q", max_retries=0)
    await fetch_one(store, "q")
    answer = await fail(store, job_id)
    assert (answer.status, answer.attempts_remaining, answer.next_attempt_at) == ("dead", 0, None)


async def test_an_active_job_past_expiry_finishes_its_attempt(store: Store) -> None:
    done = await enqueue(store, "q", expire_after=30)
    failing = await enqueue(store, "q", expire_after=30, max_retries=5, backoff="none")
    await fetch(store, "q", count=2, lease=120)
    await advance(store, 31)
    assert (await store.get_job(done)).state == "active"
    assert await ack(store, done) == "completed"
    answer = await fail(store, failing)
    assert (answer.status, answer.next_attempt_at, answer.attempts_remaining) == ("dead", None, 0)
    assert (await store.get_job(failing)).state == "dead"


async def test_release_hands_the_job_back_without_a_retry(store: Store, commits: Commits) -> None:
    job_id = await enqueue(store, "q", max_retries=0)
    await fetch_one(store, "q", worker="w1")
    await heartbeat(store, {job_id: {"attempt": 1, "checkpoint": {"step": 1}}})
    commits.clear()
    assert await release(store, job_id, worker="w1", attempt=1) == "pending"
    assert "q" in commits.woken()
    job = await store.get_job(job_id)
    assert (job.state, job.attempt, decoded(job.checkpoint)) == ("pending", 0, {"step": 1})
    assert job.errors == [] and job.last_error is None
    assert "released" in [e.type for e in job.events]
    queue = await store.get_queue("q")
    assert (queue.totals.failed, queue.counts.pending, queue.counts.active) == (0, 1, 0)

    again = await fetch_one(store, "q", worker="w2")
    assert (again.attempt, decoded(again.checkpoint)) == (1, {"step": 1})
    # A checkpoint sent with the release replaces the stored one.
    assert await release(store, job_id, checkpoint={"step": 2}, worker="w2", attempt=1) == "pending"
    third = await fetch_one(store, "q", worker="w3")
    assert (third.attempt, decoded(third.checkpoint)) == (1, {"step": 2})
    # The retry budget is untouched: with max_retries 0 one real failure kills it.
    assert (await fail(store, job_id, worker="w3", attempt=1)).status == "dead"
    assert [e.attempt for e in (await store.get_job(job_id)).errors] == [1]


async def test_release_of_a_cancel_requested_job_cancels_it(store: Store) -> None:
    job_id = await enqueue(store, "q")
    await fetch_one(store, "q")
    assert await store.cancel_job(job_id) == "cancelling"
    assert await release(store, job_id) == "cancelled"
    assert (await store.get_job(job_id)).state == "cancelled"
    assert await fetch(store, "q") == []


async def test_checkpoint_survives_failed_attempts(store: Store) -> None:
    job_id = await enqueue(store, "q", backoff="none")
    await fetch_one(store, "q")
    await heartbeat(store, {job_id: {"attempt": 1, "checkpoint": {"offset": 100}}})
    await fail(store, job_id, attempt=1)
    second = await fetch_one(store, "q")
    assert (second.attempt, decoded(second.checkpoint)) == (2, {"offset": 100})
    await heartbeat(store, {job_id: {"attempt": 2, "checkpoint": {"offset": 200}}})
    await fail(store, job_id, attempt=2)
    third = await fetch_one(store, "q")
    assert (third.attempt, decoded(third.checkpoint)) == (3, {"offset": 200})
    await ack(store, job_id, attempt=3)
    assert decoded((await store.get_job(job_id)).checkpoint) == {"offset": 200}


async def test_fail_of_a_cancel_requested_job_cancels_it(store: Store) -> None:
    job_id = await enqueue(store, "q", backoff="none")
    await fetch_one(store, "q")
    await store.cancel_job(job_id)
    answer = await fail(store, job_id)
    assert (answer.status, answer.next_attempt_at) == ("cancelled", None)
    job = await store.get_job(job_id)
    assert job.state == "cancelled"
    assert [e.error for e in job.errors] == ["boom"]
