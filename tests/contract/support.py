"""Builders and one-line calls for the Store contract suite, all through the `Store` protocol.

Inputs are the store's own parameter types (`jobbie.store.params`, `jobbie.store.search`),
filled in as the HTTP layer fills them; answers are the wire models the store returns.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import Any, TypeVar

import msgspec

from jobbie.models import FailResponse, FetchedJob, JobDetail
from jobbie.store.base import Store
from jobbie.store.params import (
    AckParams,
    FailParams,
    Fence,
    FetchParams,
    HeartbeatJob,
    HeartbeatParams,
    NewJob,
    ReleaseParams,
    Retention,
)
from jobbie.store.rules import RetryPolicy
from jobbie.store.search import SearchFilter
from jobbie.store.states import Backoff, Priority

T = TypeVar("T")

SECOND = 1000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR

# Distinct retention per kind, so a pruning test can tell them apart.
RETENTION = Retention(completed_ms=2 * DAY, dead_ms=5 * DAY, events_ms=1 * DAY, workers_ms=3 * DAY)
LEASE_S = 60.0
UNKNOWN = "job_01ARZ3NDEKTSV4RRFFQ69G5FAV"


class Commits:
    """Records each call of the store's commit callback: the queues that may have new work."""

    def __init__(self) -> None:
        self.calls: list[set[str]] = []

    def record(self, queues: Iterable[str]) -> None:
        self.calls.append(set(queues))

    def woken(self) -> set[str]:
        """Every queue named since the last `clear`."""
        return set().union(*self.calls)

    def clear(self) -> None:
        self.calls.clear()


def json_text(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def decoded(raw: msgspec.Raw) -> Any:
    """A raw JSON field of an answer (payload, result, checkpoint...) as Python."""
    return msgspec.json.decode(raw)


def ms(timestamp: str | None) -> int:
    """An answer's RFC 3339 timestamp as epoch ms."""
    assert timestamp is not None, "expected a timestamp, got null"
    return int(datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp() * 1000)


def new_job(
    queue: str,
    payload: Any = None,
    *,
    priority: str = "normal",
    max_retries: int = 3,
    backoff: str = "exponential",
    base_delay: float = 5.0,
    max_delay: float = 600.0,
    unique_key: str | None = None,
    unique_period: float | None = None,
    scheduled_at: int | None = None,
    delay: float | None = None,
    expire_after: float | None = None,
    tags: dict[str, str] | None = None,
    key: str | None = None,
) -> NewJob:
    """A job to insert; durations in seconds, `scheduled_at` in epoch ms (the API's defaults)."""
    if unique_key is not None and unique_period is None:
        unique_period = 3600.0
    return NewJob(
        queue=queue,
        payload=json_text(payload),
        priority=Priority.parse(priority).value,
        retry=RetryPolicy(
            max_retries=max_retries,
            backoff=Backoff(backoff),
            base_delay_ms=round(base_delay * SECOND),
            max_delay_ms=round(max_delay * SECOND),
        ),
        unique_key=unique_key,
        unique_period_ms=None if unique_period is None else round(unique_period * SECOND),
        scheduled_at=scheduled_at,
        delay_ms=None if delay is None else round(delay * SECOND),
        expire_after_ms=None if expire_after is None else round(expire_after * SECOND),
        tags=json_text(tags or {}),
        key=key,
    )


async def enqueue(store: Store, queue: str, payload: Any = None, **options: Any) -> str:
    """Insert a new job (not a unique duplicate); returns its id."""
    answer = await store.enqueue(new_job(queue, payload, **options))
    assert answer.unique_existing is False, answer
    return answer.job_id


async def fetch(
    store: Store,
    *queues: str,
    worker: str = "w1",
    hostname: str | None = None,
    lease: float = LEASE_S,
    count: int = 1,
) -> list[FetchedJob]:
    """One claim without waiting: the jobs leased (maybe none)."""
    claim = await store.fetch(
        FetchParams(
            queues=tuple(dict.fromkeys(queues)),
            worker_id=worker,
            hostname=hostname,
            lease_ms=round(lease * SECOND),
            count=count,
        )
    )
    return claim.jobs


async def fetch_one(store: Store, *queues: str, **options: Any) -> FetchedJob:
    """A claim that must lease exactly one job."""
    jobs = await fetch(store, *queues, **options)
    assert len(jobs) == 1, f"expected one job, got {[j.job_id for j in jobs]}"
    return jobs[0]


def fence(worker: str | None, attempt: int | None) -> Fence:
    return Fence(worker_id=worker, attempt=attempt)


async def ack(
    store: Store,
    job_id: str,
    result: Any = None,
    *,
    worker: str | None = None,
    attempt: int | None = None,
) -> str:
    return await store.ack(
        AckParams(job_id=job_id, result=json_text(result), fence=fence(worker, attempt))
    )


async def fail(
    store: Store,
    job_id: str,
    error: str = "boom",
    *,
    backtrace: str | None = None,
    worker: str | None = None,
    attempt: int | None = None,
) -> FailResponse:
    return await store.fail(
        FailParams(job_id=job_id, error=error, backtrace=backtrace, fence=fence(worker, attempt))
    )


async def release(
    store: Store,
    job_id: str,
    *,
    checkpoint: Any = None,
    worker: str | None = None,
    attempt: int | None = None,
) -> str:
    text = None if checkpoint is None else json_text(checkpoint)
    return await store.release(
        ReleaseParams(job_id=job_id, checkpoint=text, fence=fence(worker, attempt))
    )


async def heartbeat(
    store: Store, jobs: dict[str, dict[str, Any]], worker: str | None = "w1"
) -> dict[str, str]:
    """Heartbeat entries `{job_id: {"attempt"?, "checkpoint"?, "progress"?}}`."""
    entries = tuple(
        HeartbeatJob(
            job_id=job_id,
            attempt=entry.get("attempt"),
            checkpoint=json_text(entry["checkpoint"]) if "checkpoint" in entry else None,
            progress=json_text(entry["progress"]) if "progress" in entry else None,
        )
        for job_id, entry in jobs.items()
    )
    return await store.heartbeat(HeartbeatParams(worker_id=worker, jobs=entries))


async def advance(store: Store, seconds: float) -> dict[str, int]:
    """Move the store's clock forward and run one maintenance pass (what the scheduler does)."""
    store.clock.advance(seconds)
    return await store.maintain()


async def state(store: Store, job_id: str) -> str:
    return (await store.get_job(job_id)).state


async def job(store: Store, job_id: str) -> JobDetail:
    return await store.get_job(job_id)


async def search_ids(store: Store, **conditions: Any) -> list[str]:
    """Ids of one search page (conditions as SearchFilter fields)."""
    page = await store.search(SearchFilter(**conditions))
    return [found.id for found in page.jobs]


async def run_to(store: Store, queue: str, outcome: str, **options: Any) -> str:
    """A job of `queue` taken to `completed`, `dead` (one failure) or `cancelled`."""
    if outcome == "dead":
        options["max_retries"] = 0
    job_id = await enqueue(store, queue, **options)
    if outcome == "cancelled":
        assert await store.cancel_job(job_id) == "cancelled"
        return job_id
    fetched = await fetch(store, queue, count=100)
    assert job_id in [f.job_id for f in fetched]
    for other in fetched:  # leave nothing else of the queue active
        if other.job_id != job_id:
            await release(store, other.job_id)
    if outcome == "completed":
        assert await ack(store, job_id, "done") == "completed"
    else:
        assert (await fail(store, job_id)).status == "dead"
    return job_id


async def jobs_in_every_state(store: Store, queue: str) -> dict[str, str]:
    """state -> id of one job in each of the seven states."""
    jobs = {
        "completed": await run_to(store, queue, "completed"),
        "dead": await run_to(store, queue, "dead"),
        "cancelled": await run_to(store, queue, "cancelled"),
    }
    jobs["retrying"] = await enqueue(store, queue, backoff="fixed", base_delay=3600)
    await fetch_one(store, queue)
    assert (await fail(store, jobs["retrying"])).status == "retrying"
    jobs["active"] = await enqueue(store, queue)
    await fetch_one(store, queue)
    jobs["scheduled"] = await enqueue(store, queue, delay=3600)
    jobs["pending"] = await enqueue(store, queue)
    for name, job_id in jobs.items():
        assert await state(store, job_id) == name
    return jobs


async def wait_until(
    check: Callable[[], Awaitable[T | None]], *, timeout: float = 10.0, what: str = ""
) -> T:
    """Poll an asynchronous effect (a background bulk operation) until `check` is truthy."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what or check}: last={last!r}")
