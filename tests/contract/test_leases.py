"""Leases and fencing: ack, heartbeats, LeaseLost, expiry and reclaim as `lease_expired`."""

from __future__ import annotations

from typing import Any

import pytest

from jobbie.errors import Conflict, JobbieError, LeaseLost, NotFound
from jobbie.models import JobDetail
from jobbie.store.base import Store
from jobbie.store.params import AckParams, BatchSpec, Fence
from tests.contract.support import (
    SECOND,
    UNKNOWN,
    ack,
    advance,
    decoded,
    enqueue,
    fail,
    fetch,
    fetch_one,
    heartbeat,
    json_text,
    ms,
    new_job,
    release,
)


def snapshot(job: JobDetail) -> dict[str, Any]:
    """What a refused call must leave alone."""
    return {
        "state": job.state,
        "attempt": job.attempt,
        "worker": job.worker,
        "result": decoded(job.result),
        "errors": job.errors,
        "last_error": job.last_error,
        "checkpoint": decoded(job.checkpoint),
        "lease_expires_at": job.lease_expires_at,
    }


async def test_ack_completes_the_attempt(store: Store) -> None:
    job_id = await enqueue(store, "q")
    await fetch_one(store, "q", worker="w1")
    before = store.clock.now_ms()
    assert await ack(store, job_id, {"sent": True}, worker="w1", attempt=1) == "completed"
    job = await store.get_job(job_id)
    assert (job.state, job.attempt) == ("completed", 1)
    assert decoded(job.result) == {"sent": True}
    assert ms(job.completed_at) >= before
    assert job.lease_expires_at is None
    assert [e.type for e in job.events] == ["enqueued", "started", "completed"]
    queue = await store.get_queue("q")
    assert (queue.counts.active, queue.counts.completed, queue.totals.completed) == (0, 1, 1)


async def test_ack_without_fencing_fields(store: Store) -> None:
    job_id = await enqueue(store, "q")
    await fetch_one(store, "q")
    assert await ack(store, job_id, 7) == "completed"
    assert decoded((await store.get_job(job_id)).result) == 7


@pytest.mark.parametrize(("worker", "attempt"), [("intruder", 1), ("w1", 2), ("intruder", None)])
async def test_wrong_worker_or_attempt_is_lease_lost_and_changes_nothing(
    store: Store, worker: str, attempt: int | None
) -> None:
    job_id = await enqueue(store, "q")
    await fetch_one(store, "q", worker="w1")
    before = snapshot(await store.get_job(job_id))
    with pytest.raises(LeaseLost):
        await ack(store, job_id, "stolen", worker=worker, attempt=attempt)
    with pytest.raises(LeaseLost):
        await fail(store, job_id, "nope", worker=worker, attempt=attempt)
    with pytest.raises(LeaseLost):
        await release(store, job_id, worker=worker, attempt=attempt)
    entry = {} if attempt is None else {"attempt": attempt}
    assert await heartbeat(store, {job_id: entry}, worker=worker) == {job_id: "lost"}
    assert snapshot(await store.get_job(job_id)) == before
    assert (await store.get_queue("q")).totals.failed == 0
    assert await ack(store, job_id, "mine", worker="w1", attempt=1) == "completed"


async def test_a_stale_attempt_cannot_touch_the_next_one(store: Store) -> None:
    job_id = await enqueue(store, "q", backoff="none")
    await fetch_one(store, "q", worker="w1")
    await fail(store, job_id, "first", worker="w1", attempt=1)
    assert (await fetch_one(store, "q", worker="w1")).attempt == 2
    before = snapshot(await store.get_job(job_id))
    for call in (
        ack(store, job_id, worker="w1", attempt=1),
        fail(store, job_id, "stale", worker="w1", attempt=1),
        release(store, job_id, worker="w1", attempt=1),
    ):
        with pytest.raises(LeaseLost):
            await call
    assert await heartbeat(store, {job_id: {"attempt": 1}}) == {job_id: "lost"}
    assert snapshot(await store.get_job(job_id)) == before
    assert await heartbeat(store, {job_id: {"attempt": 2}}) == {job_id: "ok"}
    assert await ack(store, job_id, worker="w1", attempt=2) == "completed"


async def test_not_active_is_lease_lost_with_fencing_and_conflict_without(store: Store) -> None:
    pending = await enqueue(store, "q")
    for call in (ack(store, pending), fail(store, pending), release(store, pending)):
        with pytest.raises(Conflict) as refused:
            await call
        assert type(refused.value) is Conflict
    for call in (
        ack(store, pending, worker="w1", attempt=1),
        fail(store, pending, worker="w1"),
        release(store, pending, attempt=1),
    ):
        with pytest.raises(LeaseLost):
            await call
    assert (await store.get_job(pending)).state == "pending"


async def test_a_finished_job_cannot_be_acked_again(store: Store) -> None:
    job_id = await enqueue(store, "q")
    await fetch_one(store, "q", worker="w1")
    await ack(store, job_id, 1, worker="w1", attempt=1)
    with pytest.raises(LeaseLost):
        await ack(store, job_id, 2, worker="w1", attempt=1)
    with pytest.raises(Conflict) as refused:
        await ack(store, job_id, 3)
    assert type(refused.value) is Conflict
    assert await heartbeat(store, {job_id: {}}) == {job_id: "lost"}
    job = await store.get_job(job_id)
    assert (job.state, decoded(job.result), job.errors) == ("completed", 1, [])


async def test_unknown_job_is_not_found_for_ack_fail_release(store: Store) -> None:
    for call in (ack(store, UNKNOWN), fail(store, UNKNOWN), release(store, UNKNOWN)):
        with pytest.raises(NotFound):
            await call
    assert await heartbeat(store, {UNKNOWN: {}}) == {UNKNOWN: "lost"}
    assert await heartbeat(store, {UNKNOWN: {"attempt": 1}}, worker=None) == {UNKNOWN: "lost"}
    assert await heartbeat(store, {}) == {}


async def test_an_expired_lease_is_lost_before_any_sweep(store: Store) -> None:
    job_id = await enqueue(store, "q")
    await fetch_one(store, "q", worker="w1", lease=30)
    store.clock.advance(31)  # no maintenance pass: the clock alone decides
    assert await heartbeat(store, {job_id: {"attempt": 1}}) == {job_id: "lost"}
    for call in (
        ack(store, job_id, worker="w1", attempt=1),
        fail(store, job_id, "late", worker="w1", attempt=1),
        release(store, job_id, worker="w1", attempt=1),
        ack(store, job_id),
    ):
        with pytest.raises(LeaseLost):
            await call
    assert (await store.get_job(job_id)).state == "active"


async def test_heartbeat_extends_the_lease_by_its_duration(store: Store) -> None:
    job_id = await enqueue(store, "q", max_retries=0)
    await fetch_one(store, "q", worker="w1", lease=30)
    first_end = ms((await store.get_job(job_id)).lease_expires_at)
    for _ in range(4):  # 80 s in all, well past the first lease
        await advance(store, 20)
        assert await heartbeat(store, {job_id: {"attempt": 1}}) == {job_id: "ok"}
    now = store.clock.now_ms()
    job = await store.get_job(job_id)
    assert job.state == "active"
    assert ms(job.lease_expires_at) >= first_end + 80 * SECOND
    assert now + 30 * SECOND - SECOND <= ms(job.lease_expires_at) <= now + 30 * SECOND
    assert await ack(store, job_id, worker="w1", attempt=1) == "completed"


async def test_heartbeat_without_worker_id_or_attempt(store: Store) -> None:
    job_id = await enqueue(store, "q")
    await fetch_one(store, "q", worker="w1")
    assert await heartbeat(store, {job_id: {}}, worker=None) == {job_id: "ok"}


async def test_heartbeat_saves_progress_and_checkpoint(store: Store) -> None:
    job_id = await enqueue(store, "q")
    await fetch_one(store, "q")
    progress = {"current": 3, "total": 10, "message": "sending"}
    answer = await heartbeat(
        store, {job_id: {"attempt": 1, "progress": progress, "checkpoint": {"offset": 300}}}
    )
    assert answer == {job_id: "ok"}
    job = await store.get_job(job_id)
    assert job.progress is not None
    assert (job.progress.current, job.progress.total, job.progress.message) == (3, 10, "sending")
    assert decoded(job.checkpoint) == {"offset": 300}
    # An entry without them keeps what was saved.
    await heartbeat(store, {job_id: {"attempt": 1}})
    assert decoded((await store.get_job(job_id)).checkpoint) == {"offset": 300}


async def test_heartbeat_answers_each_job_on_its_own(store: Store) -> None:
    mine = await enqueue(store, "q")
    theirs = await enqueue(store, "q")
    await fetch_one(store, "q", worker="w1")
    await fetch_one(store, "q", worker="w2")
    answer = await heartbeat(store, {mine: {}, theirs: {}, UNKNOWN: {}}, worker="w1")
    assert answer == {mine: "ok", theirs: "lost", UNKNOWN: "lost"}


async def test_expired_lease_is_reclaimed_as_a_failed_attempt(store: Store) -> None:
    job_id = await enqueue(store, "q", max_retries=1, backoff="none")
    await fetch_one(store, "q", worker="crashy", lease=10)
    report = await advance(store, 11)
    assert sum(report.values()) >= 1
    job = await store.get_job(job_id)
    assert (job.state, job.last_error, job.lease_expires_at) == ("pending", "lease_expired", None)
    assert [(e.attempt, e.error) for e in job.errors] == [(1, "lease_expired")]
    assert "reclaimed" in [e.type for e in job.events]

    assert (await fetch_one(store, "q", worker="crashy", lease=10)).attempt == 2
    await advance(store, 11)
    job = await store.get_job(job_id)
    assert job.state == "dead"
    assert [(e.attempt, e.error) for e in job.errors] == [
        (1, "lease_expired"),
        (2, "lease_expired"),
    ]
    queue = await store.get_queue("q")
    assert (queue.totals.failed, queue.totals.dead, queue.counts.dead) == (2, 1, 1)
    assert await fetch(store, "q") == []


async def test_reclaim_follows_the_backoff_and_keeps_the_checkpoint(store: Store) -> None:
    job_id = await enqueue(store, "q", backoff="fixed", base_delay=30)
    await fetch_one(store, "q", lease=10)
    await heartbeat(store, {job_id: {"attempt": 1, "checkpoint": {"page": 7}}})
    await advance(store, 11)
    job = await store.get_job(job_id)
    assert (job.state, job.last_error) == ("retrying", "lease_expired")
    assert await fetch(store, "q") == []
    await advance(store, 31)
    again = await fetch_one(store, "q", worker="w2")
    assert (again.job_id, again.attempt, decoded(again.checkpoint)) == (job_id, 2, {"page": 7})


async def test_reclaim_of_a_cancel_requested_job_cancels_it(store: Store) -> None:
    job_id = await enqueue(store, "q", backoff="none")
    await fetch_one(store, "q", lease=10)
    assert await store.cancel_job(job_id) == "cancelling"
    await advance(store, 11)
    job = await store.get_job(job_id)
    assert (job.state, job.cancel_requested) == ("cancelled", True)
    assert await fetch(store, "q") == []


async def test_a_lease_that_ends_after_expiry_sends_the_job_to_dead(store: Store) -> None:
    job_id = await enqueue(store, "q", expire_after=30, backoff="none")
    await fetch_one(store, "q", lease=60)
    await advance(store, 61)
    job = await store.get_job(job_id)
    assert (job.state, job.last_error) == ("dead", "expired")


async def test_ack_batch_answers_each_ack_on_its_own(store: Store) -> None:
    plain = [await enqueue(store, "q", i) for i in range(3)]
    unique = await enqueue(store, "q", unique_key="u")
    batch = await store.enqueue_batch(
        [new_job("q", "b")], BatchSpec(callback_queue=None, callback_payload="null")
    )
    [in_batch] = batch.job_ids
    pending = await enqueue(store, "other")
    stolen = await enqueue(store, "q2")
    assert len(await fetch(store, "q", worker="w1", count=10)) == 5
    await fetch_one(store, "q2", worker="w2")

    results = await store.ack_batch(
        [
            AckParams(
                job_id=plain[0], result=json_text("r0"), fence=Fence(worker_id="w1", attempt=1)
            ),
            AckParams(job_id=plain[1], result=json_text("r1")),
            AckParams(job_id=unique, result="null", fence=Fence(worker_id="w1", attempt=1)),
            AckParams(job_id=in_batch, result="null", fence=Fence(worker_id="w1", attempt=1)),
            AckParams(job_id=UNKNOWN, result="null"),
            AckParams(job_id=pending, result="null"),
            AckParams(job_id=stolen, result="null", fence=Fence(worker_id="w1", attempt=1)),
            AckParams(
                job_id=plain[0], result=json_text("again"), fence=Fence(worker_id="w1", attempt=1)
            ),
        ]
    )
    assert results[:4] == ["completed"] * 4
    kinds: list[type[JobbieError]] = [type(r) for r in results[4:]]  # type: ignore[misc]
    assert kinds == [NotFound, Conflict, LeaseLost, LeaseLost]
    assert decoded((await store.get_job(plain[0])).result) == "r0"
    assert decoded((await store.get_job(plain[1])).result) == "r1"
    assert (await store.get_job(plain[2])).state == "active"
    assert (await store.get_job(stolen)).state == "active"
    assert (await store.get_batch(batch.batch_id or "")).succeeded == 1
    assert (await store.enqueue(new_job("q", unique_key="u"))).unique_existing is False
    assert (await store.get_queue("q")).totals.completed == 4
