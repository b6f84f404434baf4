"""The console's failure groups (dashboard, failures page) follow every transition in and out
of `dead` and `retrying`: failures, retries, promotion, moves, deletes, bulk actions, expiry,
reclaimed leases and retention pruning. After each step the groups must equal what the jobs
say: the jobs link of a group (its signature, dead or retrying) finds exactly `count` jobs,
on the group's queues, failed between `first_seen` and `last_seen`."""

from __future__ import annotations

from jobbie.errors import JobbieError
from jobbie.models import FailureGroup
from jobbie.store.base import Store
from jobbie.store.params import BulkSpec, FailParams
from jobbie.store.search import SearchFilter
from tests.contract.support import (
    DAY,
    SECOND,
    advance,
    enqueue,
    fail,
    fence,
    fetch,
    fetch_one,
    ms,
    state,
)

KEY = "KeyError: '<str>'"
TIMEOUT = "TimeoutError: no answer after <n> s"
VALUE = "ValueError: bad amount <n>"


async def groups(store: Store) -> list[tuple[str, int, list[str]]]:
    """(signature, count, queues) of every group, in the store's order, each checked against
    the jobs its link finds."""
    found = await store.failure_groups()
    for group in found:
        await check_against_jobs(store, group)
    return [(g.signature, g.count, g.queues) for g in found]


async def check_against_jobs(store: Store, group: FailureGroup) -> None:
    page = await store.search(
        SearchFilter(error_signature=group.signature, states=("dead", "retrying"), limit=1000)
    )
    assert page.total == group.count == len(page.jobs), group
    assert sorted({j.queue for j in page.jobs}) == group.queues, group
    failed = [ms(j.failed_at) for j in page.jobs]
    assert (ms(group.first_seen), ms(group.last_seen)) == (min(failed), max(failed)), group


async def fail_once(store: Store, queue: str, error: str, **options: object) -> str:
    """A new job of `queue`, fetched and failed once with `error`; returns its id."""
    job_id = await enqueue(store, queue, **options)
    await fetch_one(store, queue)
    await fail(store, job_id, error)
    return job_id


async def test_no_failures_no_groups(store: Store) -> None:
    await enqueue(store, "q")
    assert await groups(store) == []


async def test_groups_follow_fail_retry_move_and_delete(store: Store) -> None:
    first = await fail_once(store, "a", "KeyError: 'user 1'", max_retries=0)
    store.clock.advance(1)
    second = await fail_once(store, "b", "KeyError: 'user 2'", max_retries=0)
    store.clock.advance(1)
    flaky = await fail_once(
        store, "a", "TimeoutError: no answer after 30 s", max_retries=2, backoff="fixed"
    )
    assert [await state(store, j) for j in (first, second, flaky)] == ["dead", "dead", "retrying"]
    assert await groups(store) == [(KEY, 2, ["a", "b"]), (TIMEOUT, 1, ["a"])]

    # Promoted when its delay is over, the retrying job leaves its group; it fails again
    # another way and joins a new one.
    await advance(store, 10)
    assert await state(store, flaky) == "pending"
    assert await groups(store) == [(KEY, 2, ["a", "b"])]
    await fetch_one(store, "a")
    await fail(store, flaky, "ValueError: bad amount 7")
    assert await groups(store) == [(KEY, 2, ["a", "b"]), (VALUE, 1, ["a"])]

    await store.retry_job(first)
    assert await groups(store) == [(KEY, 1, ["b"]), (VALUE, 1, ["a"])]
    await store.move_job(second, "c")
    assert await groups(store) == [(KEY, 1, ["c"]), (VALUE, 1, ["a"])]
    await store.move_job(flaky, "c")  # retrying jobs move too
    assert await groups(store) == [(KEY, 1, ["c"]), (VALUE, 1, ["c"])]
    await store.delete_job(second)
    assert await groups(store) == [(VALUE, 1, ["c"])]

    # Its last attempt fails: from retrying to the dead letter, in the same group.
    await advance(store, 10)
    await fetch_one(store, "c")
    assert (await fail(store, flaky, "ValueError: bad amount 9")).status == "dead"
    assert await groups(store) == [(VALUE, 1, ["c"])]

    # The retried job dies with the same kind of error again.
    await fetch_one(store, "a")
    await fail(store, first, "ValueError: bad amount 8")
    assert await groups(store) == [(VALUE, 2, ["a", "c"])]


async def test_groups_follow_batch_failures_and_bulk_actions(store: Store) -> None:
    ids = [await enqueue(store, "q", max_retries=0) for _ in range(5)]
    await fetch(store, "q", count=5)
    errors = [
        "KeyError: 'k1'",
        "KeyError: 'k2'",
        "KeyError: 'k3'",
        "TimeoutError: no answer after 3 s",
    ]
    answers = await store.fail_batch(
        [
            FailParams(job_id=job_id, error=error, backtrace=None, fence=fence("w1", None))
            for job_id, error in zip(ids, errors, strict=False)
        ]
    )
    assert not any(isinstance(a, JobbieError) for a in answers)
    assert await groups(store) == [(KEY, 3, ["q"]), (TIMEOUT, 1, ["q"])]

    await store.bulk(BulkSpec(action="requeue", job_ids=(ids[0],)))
    assert await groups(store) == [(KEY, 2, ["q"]), (TIMEOUT, 1, ["q"])]
    await store.bulk(
        BulkSpec(action="move", filter=SearchFilter(error_signature=KEY), move_to_queue="r")
    )
    assert await groups(store) == [(KEY, 2, ["r"]), (TIMEOUT, 1, ["q"])]
    await store.bulk(BulkSpec(action="delete", filter=SearchFilter(error_signature=TIMEOUT)))
    assert await groups(store) == [(KEY, 2, ["r"])]
    await store.bulk(BulkSpec(action="retry", filter=SearchFilter(error_signature=KEY)))
    assert await groups(store) == []


async def test_ties_are_ordered_by_signature(store: Store) -> None:
    await fail_once(store, "q", "ValueError: bad amount 1", max_retries=0)
    await fail_once(store, "q", "KeyError: 'x'", max_retries=0)
    assert [g[0] for g in await groups(store)] == [KEY, VALUE]


async def test_expired_and_reclaimed_jobs_join_groups_and_pruning_empties_them(
    store: Store,
) -> None:
    expiring = await enqueue(store, "q", delay=60, expire_after=30)
    lost = await enqueue(store, "q", max_retries=1, backoff="fixed", base_delay=3600)
    await fetch_one(store, "q", lease=10)
    await advance(store, 61)
    assert [await state(store, j) for j in (expiring, lost)] == ["dead", "retrying"]
    # The stores' reasons, as a worker sees them in `last_error`.
    assert await groups(store) == [("expired", 1, ["q"]), ("lease_expired", 1, ["q"])]

    # Dead jobs past their retention are pruned and leave their group; the retrying one was
    # promoted long before.
    await advance(store, 6 * DAY / SECOND)
    assert await groups(store) == []
