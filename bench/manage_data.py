"""The data set of `bench.manage`, written straight into a store through the Store protocol
(no HTTP): the same insert, claim, ack and fail code the server runs, in batches.

Job i goes to queue q{i % 10}. Jobs are inserted phase by phase, so each phase's fetches take
exactly that phase's jobs: the first 40% of each queue are fetched and acked (completed), the
next 10% - inserted with max_retries 0 - are fetched and failed once (dead, with one of three
kinds of error), the rest stay pending, one in seven of them at priority high. The store's
clock starts three hours back and moves 40 s per insert batch, so `created_at` spans hours
and time-range filters mean something.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from jobbie.clock import Clock
from jobbie.store.base import Store
from jobbie.store.factory import open_store
from jobbie.store.params import AckParams, FailParams, Fence, FetchParams, NewJob, Retention
from jobbie.store.rules import DEFAULT_RETRY, RetryPolicy
from jobbie.store.states import Priority

N_QUEUES = 10
PER_BATCH = 5000
FETCH_COUNT = 1000
PLANS = ("free", "pro", "team")
REGIONS = ("eu-west", "us-east", "ap-south")
ERRORS = (
    "SmtpTimeout: smtp{n}.example.com did not answer within 30s",
    "KeyError: 'user_{n}'",
    "ValueError: amount {n} is out of range for plan pro",
)
LIVE_QUEUE = "live"  # the queue of the worker that runs during the bulk retry
START_BACK_S = 3 * 3600
STEP_S = 40.0  # clock advance per insert batch


@dataclass(frozen=True)
class Layout:
    """How many jobs of each fate every queue gets."""

    jobs: int
    completed_per_queue: int
    dead_per_queue: int

    @property
    def per_queue(self) -> int:
        return self.jobs // N_QUEUES

    @property
    def pending_per_queue(self) -> int:
        return self.per_queue - self.completed_per_queue - self.dead_per_queue

    @property
    def dead(self) -> int:
        return self.dead_per_queue * N_QUEUES

    def phases(self) -> list[tuple[str, range]]:
        """(fate, global indexes) in load order."""
        a = self.completed_per_queue * N_QUEUES
        b = a + self.dead
        return [("completed", range(0, a)), ("dead", range(a, b)), ("pending", range(b, self.jobs))]

    def pending_range(self) -> range:
        return self.phases()[2][1]


def make_layout(jobs: int) -> Layout:
    per_queue = jobs // N_QUEUES
    # 10% dead, but always above the 10,000 matches that send a bulk to the background.
    dead = max(per_queue // 10, -(-10_001 // N_QUEUES))
    return Layout(
        jobs=per_queue * N_QUEUES, completed_per_queue=per_queue * 4 // 10, dead_per_queue=dead
    )


def payload(i: int) -> dict[str, Any]:
    return {
        "user_id": i,
        "email": f"user{i}@example.com",
        "plan": PLANS[i % 3],
        "items": [{"sku": f"sku-{(i + k) % 97}", "qty": 1 + k} for k in range(1 + i % 3)],
        "amount": i % 1000,
    }


def tags(i: int) -> dict[str, str]:
    return {"tenant": f"t{(i // N_QUEUES) % 20}", "region": REGIONS[(i // 7) % 3]}


def priority(i: int, fate: str) -> str:
    return "high" if fate == "pending" and i % 7 == 0 else "normal"


def error_of(i: int) -> str:
    return ERRORS[i % 3].format(n=i)


def new_job(i: int, fate: str) -> NewJob:
    retry = (
        DEFAULT_RETRY
        if fate != "dead"
        else RetryPolicy(
            max_retries=0,
            backoff=DEFAULT_RETRY.backoff,
            base_delay_ms=DEFAULT_RETRY.base_delay_ms,
            max_delay_ms=DEFAULT_RETRY.max_delay_ms,
        )
    )
    return NewJob(
        queue=f"q{i % N_QUEUES}",
        payload=msgspec.json.encode(payload(i)).decode(),
        priority=Priority.parse(priority(i, fate)).value,
        retry=retry,
        tags=msgspec.json.encode(tags(i)).decode(),
    )


def expected_jq_total(layout: Layout, queue: str) -> int:
    q = int(queue[1:])
    return sum(
        1 for i in range(q, layout.jobs, N_QUEUES) if PLANS[i % 3] == "pro" and i % 1000 > 500
    )


def expected_tenant_total(layout: Layout, tenant: str) -> int:
    return sum(1 for i in range(layout.jobs) if tags(i)["tenant"] == tenant)


def expected_error_kind(layout: Layout, kind: int) -> int:
    """Dead jobs failed with `ERRORS[kind]`."""
    return sum(1 for i in layout.phases()[1][1] if i % 3 == kind)


def expected_high_pending(layout: Layout, queue: str) -> int:
    q = int(queue[1:])
    return sum(1 for i in layout.pending_range() if i % N_QUEUES == q and i % 7 == 0)


@dataclass
class Built:
    """What building the store took, and the clock times the bench's time filters use."""

    steps: list[tuple[str, int, float, float]]  # (label, jobs, wall s, process CPU s)
    completed_window: tuple[int, int]  # epoch ms: a slice of the completed jobs' created_at


async def _timed(
    steps: list[tuple[str, int, float, float]], label: str, work: Callable[[], Awaitable[int]]
) -> None:
    t0, c0 = time.perf_counter(), time.process_time()
    n = await work()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    steps.append((label, n, wall, cpu))
    print(f"  {label}: {n:,} jobs in {wall:.1f} s ({n / wall:,.0f}/s)", flush=True)


async def _insert(store: Store, indexes: range, fate: str) -> int:
    pending: asyncio.Task[Any] | None = None
    for lo in range(indexes.start, indexes.stop, PER_BATCH):
        jobs = [new_job(i, fate) for i in range(lo, min(lo + PER_BATCH, indexes.stop))]
        # One batch in the writer while the next is built: the two overlap.
        if pending is not None:
            await pending
            store.clock.advance(STEP_S)
        pending = asyncio.ensure_future(store.enqueue_batch(jobs, None))
    if pending is not None:
        await pending
        store.clock.advance(STEP_S)
    return len(indexes)


async def _finish(store: Store, fate: str, per_queue: int) -> int:
    """Fetch every queue's jobs (all of this phase: the earlier ones are finished) and ack or
    fail them in batches."""
    done = 0

    async def one_queue(q: int) -> None:
        nonlocal done
        left = per_queue
        while left:
            claim = await store.fetch(
                FetchParams(
                    queues=(f"q{q}",),
                    worker_id=f"setup-{fate}",
                    hostname=None,
                    lease_ms=3_600_000,
                    count=min(FETCH_COUNT, left),
                )
            )
            jobs = claim.jobs
            assert jobs, f"q{q} ran dry with {left} {fate} jobs to go"
            fence = [Fence(worker_id=f"setup-{fate}", attempt=j.attempt) for j in jobs]
            if fate == "completed":
                acks = [
                    AckParams(job_id=j.job_id, result="null", fence=f)
                    for j, f in zip(jobs, fence, strict=True)
                ]
                results = await store.ack_batch(acks)
                assert all(r == "completed" for r in results), results[:3]
            else:
                fails = [
                    FailParams(
                        job_id=j.job_id,
                        error=error_of(msgspec.json.decode(j.payload)["user_id"]),
                        fence=f,
                    )
                    for j, f in zip(jobs, fence, strict=True)
                ]
                outcomes = await store.fail_batch(fails)
                assert all(getattr(o, "status", None) == "dead" for o in outcomes), outcomes[:3]
            left -= len(jobs)
            done += len(jobs)

    # Every queue at once: the writer commits their transactions together.
    await asyncio.gather(*(one_queue(q) for q in range(N_QUEUES)))
    return done


async def _build(data_dir: Path, layout: Layout, live_jobs: int) -> Built:
    clock = Clock(offset_ms=-START_BACK_S * 1000)
    store = await open_store(
        database=None, data_dir=data_dir, durable=False, retention=Retention(), clock=clock
    )
    steps: list[tuple[str, int, float, float]] = []
    try:
        phases = dict(layout.phases())
        await _timed(
            steps, "insert to-complete", lambda: _insert(store, phases["completed"], "completed")
        )
        t_lo = clock.now_ms() - round(STEP_S * 1000 * len(phases["completed"]) / PER_BATCH * 0.6)
        t_hi = t_lo + round(STEP_S * 1000 * 10)
        await _timed(
            steps,
            f"fetch {FETCH_COUNT} + ack_batch",
            lambda: _finish(store, "completed", layout.completed_per_queue),
        )
        await _timed(steps, "insert to-die", lambda: _insert(store, phases["dead"], "dead"))
        await _timed(
            steps,
            f"fetch {FETCH_COUNT} + fail_batch",
            lambda: _finish(store, "dead", layout.dead_per_queue),
        )
        await _timed(steps, "insert pending", lambda: _insert(store, phases["pending"], "pending"))

        async def live() -> int:
            for lo in range(0, live_jobs, PER_BATCH):
                jobs = [
                    NewJob(
                        queue=LIVE_QUEUE,
                        payload=msgspec.json.encode({"n": k}).decode(),
                        priority=Priority.parse("normal").value,
                        retry=DEFAULT_RETRY,
                    )
                    for k in range(lo, min(lo + PER_BATCH, live_jobs))
                ]
                await store.enqueue_batch(jobs, None)
            return live_jobs

        await _timed(steps, f"insert '{LIVE_QUEUE}'", live)
    finally:
        await store.close()
    return Built(steps=steps, completed_window=(t_lo, t_hi))


def build_store(data_dir: Path, layout: Layout, live_jobs: int) -> Built:
    """Create and fill the store the server will open at `data_dir`."""
    return asyncio.run(_build(data_dir, layout, live_jobs))
