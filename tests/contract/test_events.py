"""The event log: one event per transition, in order, filtered, and resumable after an id."""

from __future__ import annotations

from jobbie.store.base import Store
from tests.contract.support import (
    ack,
    advance,
    enqueue,
    fail,
    fetch_one,
    ms,
    release,
)


async def types_of(store: Store, job_id: str) -> list[str]:
    return [e.type for e in (await store.get_job(job_id)).events]


async def test_an_empty_log(store: Store) -> None:
    assert await store.last_event_id() == 0
    assert await store.read_events(0, (), (), 100) == []


async def test_a_job_lifecycle_in_order(store: Store) -> None:
    job_id = await enqueue(store, "q", backoff="fixed", base_delay=10, delay=5)
    await advance(store, 6)
    await fetch_one(store, "q", worker="w1")
    failure = await fail(store, job_id, "boom")
    await advance(store, 11)
    await fetch_one(store, "q", worker="w1")
    await release(store, job_id)
    await fetch_one(store, "q", worker="w1")
    await ack(store, job_id)

    expected = ["enqueued", "promoted", "started", "failed", "retrying", "promoted", "started"]
    expected += ["released", "started", "completed"]
    assert await types_of(store, job_id) == expected
    events = await store.read_events(0, (), (), 100)
    assert [e.type for e in events] == expected
    assert all((e.job_id, e.queue) == (job_id, "q") for e in events)
    ids = [e.id for e in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    times = [ms(e.at) for e in events]
    assert times == sorted(times)
    assert await store.last_event_id() == ids[-1]
    details = {e.type: e.data for e in (await store.get_job(job_id)).events}
    assert details["failed"] == {"attempt": 1, "error": "boom"}
    assert details["retrying"] == {"next_attempt_at": failure.next_attempt_at}
    assert details["released"] == {"attempt": 2}  # the attempt handed back


async def test_dead_cancelled_expired_moved_deleted_reclaimed(store: Store) -> None:
    dead = await enqueue(store, "q", max_retries=0)
    await fetch_one(store, "q")
    await fail(store, dead)
    cancelled = await enqueue(store, "q")
    await store.cancel_job(cancelled)
    expired = await enqueue(store, "slow", expire_after=10)
    reclaimed = await enqueue(store, "q", max_retries=0)
    await fetch_one(store, "q", worker="gone", lease=30)
    moved = await enqueue(store, "q")
    await store.move_job(moved, "other")
    deleted = await enqueue(store, "q")
    await store.delete_job(deleted)
    await advance(store, 31)

    assert (await types_of(store, dead))[-2:] == ["failed", "dead"]
    assert (await types_of(store, cancelled))[-1] == "cancelled"
    assert (await types_of(store, expired))[-1] == "expired"
    assert (await types_of(store, reclaimed))[-3:] == ["reclaimed", "failed", "dead"]
    reclaim = [e for e in (await store.get_job(reclaimed)).events if e.type == "reclaimed"]
    assert reclaim[0].data == {"worker_id": "gone"}
    assert (await types_of(store, moved))[-1] == "moved"
    deletion = await store.read_events(0, (), ("deleted",), 100)
    assert [(e.job_id, e.queue) for e in deletion] == [(deleted, "q")]


async def test_reading_resumes_after_an_id_with_a_limit(store: Store) -> None:
    for i in range(5):
        await enqueue(store, "q", i)
    everything = await store.read_events(0, (), (), 100)
    assert len(everything) == 5
    first = await store.read_events(0, (), (), 2)
    assert first == everything[:2]
    rest = await store.read_events(first[-1].id, (), (), 100)
    assert rest == everything[2:]
    assert await store.read_events(everything[-1].id, (), (), 100) == []

    later = await enqueue(store, "q")
    [new] = await store.read_events(everything[-1].id, (), (), 100)
    assert (new.job_id, new.type) == (later, "enqueued")


async def test_reading_by_queue_and_type(store: Store) -> None:
    a = await enqueue(store, "a")
    b = await enqueue(store, "b")
    await enqueue(store, "c")
    await fetch_one(store, "a")
    await ack(store, a)

    in_a = await store.read_events(0, ("a",), (), 100)
    assert [(e.job_id, e.type) for e in in_a] == [
        (a, "enqueued"),
        (a, "started"),
        (a, "completed"),
    ]
    in_ab = await store.read_events(0, ("a", "b"), ("enqueued",), 100)
    assert [e.job_id for e in in_ab] == [a, b]
    assert [e.job_id for e in await store.read_events(0, (), ("completed",), 100)] == [a]


async def test_a_moved_job_is_announced_on_the_queue_it_left(store: Store) -> None:
    job_id = await enqueue(store, "from")
    await store.move_job(job_id, "to")
    [moved] = await store.read_events(0, ("from",), ("moved",), 100)
    assert (moved.job_id, moved.data) == (job_id, {"from": "from", "to": "to"})
