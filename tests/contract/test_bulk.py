"""Bulk actions by ids and by filter: which states each applies to, skipped and unknown counts,
and the background operation above the threshold."""

from __future__ import annotations

import pytest

from jobbie.errors import NotFound
from jobbie.models import BulkAccepted, BulkResponse, BulkStatus
from jobbie.store.base import Store
from jobbie.store.bulk import BulkRunner
from jobbie.store.params import BulkSpec
from jobbie.store.search import SearchFilter
from tests.contract.support import (
    UNKNOWN,
    enqueue,
    fail,
    fetch_one,
    heartbeat,
    jobs_in_every_state,
    ms,
    state,
    wait_until,
)

ALL = frozenset({"pending", "scheduled", "active", "retrying", "completed", "dead", "cancelled"})
# The states each action applies to (the spec's bulk table); the others are skipped.
APPLIES_TO = {
    "retry": {"dead", "cancelled", "completed"},
    "delete": set(ALL),
    "cancel": {"pending", "active", "scheduled", "retrying"},
    "move": {"pending", "dead", "scheduled", "completed"},
    "requeue": {"dead"},
    "change_priority": {"pending", "scheduled"},
}


def action_spec(action: str, **target: object) -> BulkSpec:
    options: dict[str, object] = {}
    if action == "move":
        options["move_to_queue"] = "moved"
    if action == "change_priority":
        options["priority"] = 0
    return BulkSpec(action=action, **options, **target)  # type: ignore[arg-type]


async def check_applied(store: Store, action: str, jobs: dict[str, str]) -> None:
    """Each job changed as the action says, or not at all when it does not apply."""
    for before, job_id in jobs.items():
        applies = before in APPLIES_TO[action]
        if action == "delete":
            with pytest.raises(NotFound):
                await store.get_job(job_id)
            continue
        job = await store.get_job(job_id)
        if not applies:
            assert (job.state, job.queue, job.priority) == (before, "q", "normal"), before
        elif action in ("retry", "requeue"):
            assert job.state == "pending", before
        elif action == "cancel":
            expected = ("active", True) if before == "active" else ("cancelled", False)
            assert (job.state, job.cancel_requested) == expected
        elif action == "move":
            assert (job.state, job.queue) == (before, "moved")
        else:
            assert (job.state, job.priority) == (before, "critical")


@pytest.mark.parametrize("action", sorted(APPLIES_TO))
async def test_each_action_by_ids(store: Store, action: str) -> None:
    jobs = await jobs_in_every_state(store, "q")
    answer = await store.bulk(action_spec(action, job_ids=(*jobs.values(), UNKNOWN)))
    assert isinstance(answer, BulkResponse)
    affected = len(APPLIES_TO[action])
    assert (answer.affected, answer.skipped, answer.errors) == (affected, 7 - affected, 1)
    assert answer.duration_ms >= 0
    await check_applied(store, action, jobs)


@pytest.mark.parametrize("action", sorted(APPLIES_TO))
async def test_each_action_by_filter(store: Store, action: str) -> None:
    jobs = await jobs_in_every_state(store, "q")
    bystander = await enqueue(store, "other")
    answer = await store.bulk(action_spec(action, filter=SearchFilter(queues=("q",))))
    assert isinstance(answer, BulkResponse)
    affected = len(APPLIES_TO[action])
    assert (answer.affected, answer.skipped, answer.errors) == (affected, 7 - affected, 0)
    await check_applied(store, action, jobs)
    job = await store.get_job(bystander)
    assert (job.state, job.queue, job.priority) == ("pending", "other", "normal")


async def test_a_filter_narrows_to_its_matches(store: Store) -> None:
    jobs = await jobs_in_every_state(store, "q")
    answer = await store.bulk(
        BulkSpec(action="retry", filter=SearchFilter(queues=("q",), states=("dead", "cancelled")))
    )
    assert isinstance(answer, BulkResponse)
    assert (answer.affected, answer.skipped) == (2, 0)
    assert await state(store, jobs["completed"]) == "completed"
    assert await state(store, jobs["dead"]) == "pending"


async def test_requeue_grants_one_more_attempt_and_keeps_the_history(store: Store) -> None:
    job_id = await enqueue(store, "q", max_retries=1, backoff="none")
    await fetch_one(store, "q")
    await heartbeat(store, {job_id: {"checkpoint": {"page": 3}}})
    await fail(store, job_id, "first")
    await fetch_one(store, "q")
    assert (await fail(store, job_id, "second")).status == "dead"

    answer = await store.bulk(BulkSpec(action="requeue", job_ids=(job_id,)))
    assert isinstance(answer, BulkResponse) and answer.affected == 1
    job = await store.get_job(job_id)
    assert (job.state, job.attempt, len(job.errors)) == ("pending", 2, 2)
    again = await fetch_one(store, "q")
    assert again.attempt == 3
    assert again.checkpoint == job.checkpoint
    answer_fail = await fail(store, job_id, "third")
    assert (answer_fail.status, answer_fail.attempts_remaining) == ("dead", 0)


async def test_bulk_retry_resets_the_attempt(store: Store) -> None:
    jobs = await jobs_in_every_state(store, "q")
    await store.bulk(BulkSpec(action="retry", job_ids=(jobs["dead"],)))
    job = await store.get_job(jobs["dead"])
    assert (job.state, job.attempt) == ("pending", 0)
    assert [e.error for e in job.errors] == ["boom"]


async def test_bulk_move_records_where_the_job_went(store: Store) -> None:
    job_id = await enqueue(store, "q")
    await store.bulk(BulkSpec(action="move", job_ids=(job_id,), move_to_queue="elsewhere"))
    job = await store.get_job(job_id)
    assert job.queue == "elsewhere"
    assert (job.events[-1].type, job.events[-1].data) == ("moved", {"from": "q", "to": "elsewhere"})
    assert (await fetch_one(store, "elsewhere")).job_id == job_id


async def test_bulk_cancel_and_delete_release_unique_keys(store: Store) -> None:
    cancelled = await enqueue(store, "q", unique_key="a")
    deleted = await enqueue(store, "q", unique_key="b")
    await store.bulk(BulkSpec(action="cancel", job_ids=(cancelled,)))
    await store.bulk(BulkSpec(action="delete", job_ids=(deleted,)))
    assert await enqueue(store, "q", unique_key="a") != cancelled
    assert await enqueue(store, "q", unique_key="b") != deleted


async def test_unknown_ids_only(store: Store) -> None:
    answer = await store.bulk(BulkSpec(action="delete", job_ids=(UNKNOWN,)))
    assert isinstance(answer, BulkResponse)
    assert (answer.affected, answer.skipped, answer.errors) == (0, 0, 1)


async def test_an_id_holding_a_nul_character_names_no_job(store: Store) -> None:
    job_id = await enqueue(store, "q")
    answer = await store.bulk(BulkSpec(action="delete", job_ids=(job_id, job_id + "\x00")))
    assert isinstance(answer, BulkResponse)
    assert (answer.affected, answer.skipped, answer.errors) == (1, 0, 1)


def lower_background_threshold(store: Store, monkeypatch: pytest.MonkeyPatch, matches: int) -> None:
    """Bulk requests over more than `background_above` matches run in the background (10,000
    in production). Every backend carries them out with the backend-neutral `BulkRunner`;
    lower the threshold of the one this store holds."""
    runners = [value for value in vars(store).values() if isinstance(value, BulkRunner)]
    assert runners, "the store carries out bulk requests with jobbie.store.bulk.BulkRunner"
    for runner in runners:
        monkeypatch.setattr(runner, "background_above", matches)


async def finished(store: Store, bulk_id: str) -> BulkStatus:
    async def check() -> BulkStatus | None:
        status = await store.get_bulk(bulk_id)
        return status if status.status != "running" else None

    return await wait_until(check, what=f"bulk operation {bulk_id}")


async def test_a_large_bulk_runs_in_the_background(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    lower_background_threshold(store, monkeypatch, 5)
    ids = [await enqueue(store, "q", i) for i in range(12)]
    await fetch_one(store, "q")  # one active job: cancel asks it to stop
    await store.cancel_job(ids[1])  # already cancelled: skipped
    before = store.clock.now_ms()
    answer = await store.bulk(BulkSpec(action="cancel", filter=SearchFilter(queues=("q",))))
    assert isinstance(answer, BulkAccepted)
    assert answer.bulk_operation_id.startswith("bulk_")
    assert (answer.status, answer.estimated_total) == ("running", 12)
    assert answer.progress_url == f"/api/v1/bulk/{answer.bulk_operation_id}"

    status = await finished(store, answer.bulk_operation_id)
    assert (status.id, status.action, status.status) == (
        answer.bulk_operation_id,
        "cancel",
        "completed",
    )
    assert (status.estimated_total, status.affected, status.skipped, status.errors) == (
        12,
        11,
        1,
        0,
    )
    assert ms(status.created_at) >= before
    assert ms(status.finished_at) >= ms(status.created_at)
    counts = (await store.get_queue("q")).counts
    assert (counts.cancelled, counts.active, counts.pending) == (11, 1, 0)


async def test_a_large_bulk_by_ids_counts_unknown_ids(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    lower_background_threshold(store, monkeypatch, 2)
    ids = [await enqueue(store, "q", i) for i in range(4)]
    answer = await store.bulk(BulkSpec(action="delete", job_ids=(*ids, UNKNOWN)))
    assert isinstance(answer, BulkAccepted)
    assert answer.estimated_total == 4
    status = await finished(store, answer.bulk_operation_id)
    assert (status.status, status.affected, status.errors) == ("completed", 4, 1)
    assert (await store.get_queue("q")).counts.pending == 0


async def test_at_the_threshold_the_bulk_answers_at_once(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    lower_background_threshold(store, monkeypatch, 3)
    for i in range(3):
        await enqueue(store, "q", i)
    answer = await store.bulk(BulkSpec(action="delete", filter=SearchFilter(queues=("q",))))
    assert isinstance(answer, BulkResponse) and answer.affected == 3


async def test_unknown_bulk_operation_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        await store.get_bulk("bulk_01ARZ3NDEKTSV4RRFFQ69G5FAV")
