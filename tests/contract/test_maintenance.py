"""Maintenance passes: promotion, expiry, drains, and pruning by retention."""

from __future__ import annotations

import pytest

from jobbie.errors import NotFound
from jobbie.store.base import Store
from tests.contract.support import (
    DAY,
    HOUR,
    RETENTION,
    advance,
    enqueue,
    fail,
    fetch,
    fetch_one,
    new_job,
    run_to,
    search_ids,
    state,
)


async def test_a_pass_with_nothing_due_changes_nothing(store: Store) -> None:
    pending = await enqueue(store, "q")
    scheduled = await enqueue(store, "q", delay=60)
    report = await store.maintain()
    assert all(n == 0 for n in report.values()), report
    assert (await state(store, pending), await state(store, scheduled)) == ("pending", "scheduled")


async def test_a_pass_promotes_every_due_job_and_a_second_finds_nothing(store: Store) -> None:
    answer = await store.enqueue_batch([new_job("q", i, delay=30) for i in range(1200)], None)
    report = await advance(store, 31)
    assert sum(report.values()) >= 1200
    assert (await store.get_queue("q")).counts.pending == 1200
    assert all(n == 0 for n in (await store.maintain()).values())
    # Promoted jobs keep their enqueue order.
    fetched = await fetch(store, "q", count=1000)
    assert [j.job_id for j in fetched] == answer.job_ids[:1000]


async def test_a_retrying_job_past_its_expiry_dies(store: Store) -> None:
    job_id = await enqueue(store, "q", expire_after=60, backoff="fixed", base_delay=120)
    await fetch_one(store, "q")
    assert (await fail(store, job_id)).status == "retrying"
    await advance(store, 61)
    job = await store.get_job(job_id)
    assert (job.state, job.last_error) == ("dead", "expired")


@pytest.mark.parametrize("outcome", ["completed", "cancelled"])
async def test_finished_jobs_are_pruned_after_their_retention(store: Store, outcome: str) -> None:
    job_id = await run_to(store, "q", outcome)
    waiting = await enqueue(store, "q", delay=30 * 86_400)
    await advance(store, (RETENTION.completed_ms - HOUR) / 1000)
    assert await state(store, job_id) == outcome
    await advance(store, 2 * HOUR / 1000)
    with pytest.raises(NotFound):
        await store.get_job(job_id)
    assert await search_ids(store) == [waiting]
    assert getattr((await store.get_queue("q")).counts, outcome) == 0


async def test_dead_jobs_are_kept_longer(store: Store) -> None:
    dead = await run_to(store, "q", "dead")
    completed = await run_to(store, "q", "completed")
    await advance(store, (RETENTION.completed_ms + HOUR) / 1000)
    assert await state(store, dead) == "dead"
    with pytest.raises(NotFound):
        await store.get_job(completed)
    await advance(store, (RETENTION.dead_ms - RETENTION.completed_ms) / 1000)
    with pytest.raises(NotFound):
        await store.get_job(dead)
    assert (await store.get_queue("q")).counts.dead == 0


async def test_events_are_pruned_after_their_retention(store: Store) -> None:
    job_id = await enqueue(store, "q", delay=10 * 86_400)
    assert len(await store.read_events(0, (), (), 100)) == 1
    await advance(store, (RETENTION.events_ms + HOUR) / 1000)
    assert await store.read_events(0, (), (), 100) == []
    assert (await store.get_job(job_id)).events == []
    assert await state(store, job_id) == "scheduled"


async def test_event_ids_keep_growing_after_pruning(store: Store) -> None:
    await enqueue(store, "q", delay=10 * 86_400)
    last = await store.last_event_id()
    await advance(store, (RETENTION.events_ms + HOUR) / 1000)
    await enqueue(store, "q")
    [event] = await store.read_events(0, (), (), 100)
    # A stream resuming after `last` must not miss the new event.
    assert event.id > last
    assert await store.last_event_id() == event.id


async def test_workers_not_seen_within_the_retention_are_forgotten(store: Store) -> None:
    await fetch(store, "q", worker="old")
    await advance(store, (RETENTION.workers_ms - HOUR) / 1000)
    await fetch(store, "q", worker="recent")
    assert {w.id for w in await store.list_workers()} == {"old", "recent"}
    await advance(store, 2 * HOUR / 1000)
    assert [w.id for w in await store.list_workers()] == ["recent"]


async def test_waiting_jobs_are_never_pruned(store: Store) -> None:
    pending = await enqueue(store, "q")
    await store.pause_queue("q")
    await advance(store, (RETENTION.dead_ms + DAY) / 1000)
    assert await state(store, pending) == "pending"
