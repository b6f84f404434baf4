"""Search: every filter, the total, sorting, and keyset cursors that visit each job once."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from jobbie.models import SortField
from jobbie.store import jq
from jobbie.store.base import Store
from jobbie.store.cursor import decode_cursor
from jobbie.store.params import BatchSpec
from jobbie.store.search import TOTAL_CAP, SearchFilter
from tests.contract.support import (
    ack,
    enqueue,
    fail,
    fetch_one,
    ms,
    new_job,
    search_ids,
)


async def corpus(store: Store) -> dict[str, str]:
    """Named jobs with distinct fields, created 10 s apart (so time filters can tell them
    apart): name -> id."""
    jobs: dict[str, str] = {}

    async def tick() -> None:
        store.clock.advance(10)

    jobs["a1"] = await enqueue(
        store,
        "a",
        {"to": "x@acme.io", "n": 1},
        priority="high",
        tags={"tenant": "acme", "tier": "gold"},
        unique_key="u1",
    )
    await tick()
    jobs["a2"] = await enqueue(
        store, "a", {"to": "y@other.io", "n": 5}, tags={"tenant": "acme"}, expire_after=3600
    )
    await tick()
    jobs["b1"] = await enqueue(store, "b", {"n": 10}, priority="critical", delay=600)
    await tick()
    jobs["dead"] = await enqueue(store, "b", {"n": 20}, max_retries=0)
    await fetch_one(store, "b", worker="w-dead")
    await fail(store, jobs["dead"], "smtp timeout")
    await tick()
    jobs["done"] = await enqueue(store, "c", {"n": 30})
    await fetch_one(store, "c", worker="w-done")
    await tick()
    await ack(store, jobs["done"])
    batch = await store.enqueue_batch(
        [new_job("c", {"n": 40})], BatchSpec(callback_queue=None, callback_payload="null")
    )
    jobs["batched"] = batch.job_ids[0]
    return jobs


async def names(store: Store, jobs: dict[str, str], **conditions: Any) -> set[str]:
    """The corpus names a search matches (page size well above the corpus)."""
    by_id = {job_id: name for name, job_id in jobs.items()}
    found = await search_ids(store, limit=100, **conditions)
    return {by_id[job_id] for job_id in found}


async def test_no_filter_finds_everything_newest_first(store: Store) -> None:
    jobs = await corpus(store)
    page = await store.search(SearchFilter())
    assert [j.id for j in page.jobs] == list(reversed(jobs.values()))
    assert (page.total, page.has_more, page.cursor) == (6, False, None)
    assert page.duration_ms >= 0


async def test_queue_state_and_priority(store: Store) -> None:
    jobs = await corpus(store)
    assert await names(store, jobs, queues=("a",)) == {"a1", "a2"}
    assert await names(store, jobs, queues=("a", "c")) == {"a1", "a2", "done", "batched"}
    assert await names(store, jobs, states=("dead", "completed")) == {"dead", "done"}
    assert await names(store, jobs, states=("scheduled",)) == {"b1"}
    assert await names(store, jobs, priorities=(0, 1)) == {"a1", "b1"}
    assert await names(store, jobs, queues=("b",), states=("pending",)) == set()


async def test_tags_must_all_match(store: Store) -> None:
    jobs = await corpus(store)
    assert await names(store, jobs, tags=(("tenant", "acme"),)) == {"a1", "a2"}
    assert await names(store, jobs, tags=(("tenant", "acme"), ("tier", "gold"))) == {"a1"}
    assert await names(store, jobs, tags=(("tenant", "other"),)) == set()


async def test_payload_contains_and_jq(store: Store) -> None:
    jobs = await corpus(store)
    assert await names(store, jobs, payload_contains="acme.io") == {"a1"}
    assert await names(store, jobs, payload_contains="%") == set()  # a literal, not a wildcard
    assert await names(store, jobs, payload_jq=jq.parse_jq(".n >= 10 and .n < 40")) == {
        "b1",
        "dead",
        "done",
    }
    assert await names(store, jobs, payload_jq=jq.parse_jq('.to | endswith("@other.io")')) == {"a2"}


async def test_time_windows_are_exclusive(store: Store) -> None:
    jobs = await corpus(store)
    created = {name: ms((await store.get_job(job_id)).created_at) for name, job_id in jobs.items()}
    assert await names(store, jobs, created_after=created["a2"]) == {
        "b1",
        "dead",
        "done",
        "batched",
    }
    assert await names(
        store, jobs, created_after=created["a1"], created_before=created["dead"]
    ) == {"a2", "b1"}
    b1 = await store.get_job(jobs["b1"])
    at = ms(b1.scheduled_at)
    assert await names(store, jobs, scheduled_after=at - 1, scheduled_before=at + 1) == {"b1"}
    done = await store.get_job(jobs["done"])
    assert await names(store, jobs, started_before=ms(done.started_at) + 1) == {"dead", "done"}
    assert await names(store, jobs, started_after=ms(done.started_at) - 1) == {"done"}
    assert await names(store, jobs, completed_after=ms(done.completed_at) - 1) == {"done"}
    assert await names(store, jobs, completed_before=ms(done.completed_at)) == {"dead"}
    expire = ms((await store.get_job(jobs["a2"])).expire_at)
    assert await names(store, jobs, expire_before=expire + 1) == {"a2"}
    assert await names(store, jobs, expire_after=expire) == set()


async def test_attempts_errors_and_identity(store: Store) -> None:
    jobs = await corpus(store)
    assert await names(store, jobs, attempt_min=1) == {"dead", "done"}
    assert await names(store, jobs, attempt_max=0) == {"a1", "a2", "b1", "batched"}
    assert await names(store, jobs, has_errors=True) == {"dead"}
    assert len(await names(store, jobs, has_errors=False)) == 5
    assert await names(store, jobs, error_contains="smtp") == {"dead"}
    assert await names(store, jobs, error_contains="disk") == set()
    assert await names(store, jobs, unique_key="u1") == {"a1"}
    assert await names(store, jobs, worker_id="w-done") == {"done"}
    batch_id = (await store.get_job(jobs["batched"])).batch_id
    assert await names(store, jobs, batch_id=batch_id) == {"batched"}
    assert await names(store, jobs, job_id_prefix=jobs["b1"]) == {"b1"}
    assert len(await names(store, jobs, job_id_prefix="job_")) == 6


async def test_found_jobs_carry_their_errors(store: Store) -> None:
    jobs = await corpus(store)
    [dead] = (await store.search(SearchFilter(states=("dead",)))).jobs
    assert dead.id == jobs["dead"]
    assert [(e.attempt, e.error) for e in dead.errors] == [(1, "smtp timeout")]


async def walk(store: Store, f: SearchFilter, between: Any = None) -> list[str]:
    """Every id over all pages, following cursors; `between()` runs after each page."""
    seen: list[str] = []
    while True:
        page = await store.search(f)
        seen += [j.id for j in page.jobs]
        assert page.has_more == (page.cursor is not None)
        if page.cursor is None:
            return seen
        assert len(page.jobs) == f.limit
        if between is not None:
            await between()
        f = replace(f, cursor=decode_cursor(page.cursor))


@pytest.mark.parametrize("descending", [True, False])
async def test_cursor_pages_visit_each_job_once(store: Store, descending: bool) -> None:
    ids = [await enqueue(store, "q", i) for i in range(7)]
    f = SearchFilter(queues=("q",), limit=3, descending=descending)
    first = await store.search(f)
    assert (first.total, first.has_more) == (7, True)
    expected = list(reversed(ids)) if descending else ids
    assert await walk(store, f) == expected


async def test_jobs_inserted_between_pages_are_neither_repeated_nor_skip_others(
    store: Store,
) -> None:
    old = [await enqueue(store, "q", i) for i in range(6)]
    added: list[str] = []

    async def insert() -> None:
        added.append(await enqueue(store, "q", "new"))

    newest_first = await walk(store, SearchFilter(queues=("q",), limit=2), insert)
    assert newest_first == list(reversed(old))  # newer jobs sort before the cursor
    oldest_first = await walk(store, SearchFilter(queues=("q",), limit=2, descending=False), insert)
    # Oldest first, every job inserted before the walk ends is met at the end, once.
    assert oldest_first == old + added


@pytest.mark.parametrize(
    ("sort", "descending"),
    [
        ("priority", False),
        ("priority", True),
        ("attempt", True),
        ("started_at", False),
        ("started_at", True),
        ("completed_at", False),
        ("scheduled_at", True),
        ("created_at", False),
    ],
)
async def test_every_sort_pages_through_every_job_in_order(
    store: Store, sort: SortField, descending: bool
) -> None:
    """Pages of 2 over jobs with ties and NULLs in the sort column visit each job once, in
    the column's order (NULL below every value)."""
    for i, priority in enumerate(["normal", "critical", "high", "normal", "critical"]):
        await enqueue(store, "q", i, priority=priority)
    await enqueue(store, "q", "later", delay=60)
    await fetch_one(store, "q")  # started, attempt 1
    store.clock.advance(5)
    second = await fetch_one(store, "q")
    await ack(store, second.job_id)  # started and completed
    f = SearchFilter(sort=sort, descending=descending, limit=2)
    everything = await store.search(replace(f, limit=100))
    assert await walk(store, f) == [j.id for j in everything.jobs]
    assert len(everything.jobs) == 6

    def key(job: Any) -> int:
        value = getattr(job, sort)
        if sort == "priority":
            return {"critical": 0, "high": 1, "normal": 2}[value]
        if sort == "attempt":
            return int(value)
        return -1 if value is None else ms(value)

    keys = [key(j) for j in everything.jobs]
    assert keys == sorted(keys, reverse=descending)


async def test_limit_and_total(store: Store) -> None:
    for i in range(5):
        await enqueue(store, "q", i)
    page = await store.search(SearchFilter(limit=2))
    assert (len(page.jobs), page.total, page.has_more) == (2, 5, True)
    assert (await store.search(SearchFilter(limit=5))).has_more is False


async def many(store: Store, queue: str, count: int, padding: int = 0) -> None:
    """`count` jobs on `queue` with payloads {"n": i} (and `padding` characters more in a
    second field), in batches."""
    for lo in range(0, count, 2000):
        jobs = [
            new_job(queue, {"n": i, "pad": "x" * padding} if padding else {"n": i})
            for i in range(lo, min(lo + 2000, count))
        ]
        await store.enqueue_batch(jobs, BatchSpec(callback_queue=None, callback_payload="null"))


async def test_total_stops_counting_at_the_cap(store: Store) -> None:
    await many(store, "big", TOTAL_CAP + 5)
    await enqueue(store, "small", 1)
    page = await store.search(SearchFilter(queues=("big",), limit=3))
    assert (len(page.jobs), page.total, page.total_capped, page.has_more) == (
        3,
        TOTAL_CAP,
        True,
        True,
    )
    small = await store.search(SearchFilter(queues=("small",)))
    assert (small.total, small.total_capped, small.timed_out) == (1, False, False)


async def test_a_scan_past_the_time_limit_answers_with_what_it_found(store: Store) -> None:
    # Payloads of 4 KB make the scan slow whatever the machine: PostgreSQL gives every
    # statement at least 25 ms, and reading 20,000 plain {"n": i} can take less.
    await many(store, "scan", 20_000, padding=4000)
    # No payload matches: the whole queue is read, far longer than the limit.
    nothing = SearchFilter(payload_jq=jq.parse_jq(".n == -1"), time_limit_ms=1)
    page = await store.search(nothing)
    assert page.timed_out is True
    assert (page.jobs, page.has_more, page.cursor) == ([], False, None)
    assert page.duration_ms < 1000

    # Every payload matches: the page fills well within a limit the whole scan would not
    # meet (PostgreSQL may sort before the first row, so not within 1 ms), and if the count is
    # cut short the total is at least the page.
    everything = SearchFilter(payload_jq=jq.parse_jq(".n >= 0"), time_limit_ms=200, limit=5)
    page = await store.search(everything)
    assert len(page.jobs) == 5 and page.has_more
    assert page.total >= 5

    unlimited = await store.search(replace(nothing, time_limit_ms=None))
    assert (unlimited.timed_out, unlimited.total, unlimited.jobs) == (False, 0, [])
