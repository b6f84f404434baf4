"""Planning new jobs, for every backend: ids, first state, due and expiry times, unique locks,
and how a batch with repeated or already-held unique keys maps to jobs.

Backends write the plan with their own SQL in the same transaction as the uniqueness check.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from jobbie.store.ids import new_job_id
from jobbie.store.params import NewJob
from jobbie.store.states import State


@dataclass(frozen=True, slots=True)
class PlannedJob:
    """One row to insert."""

    id: str
    job: NewJob
    state: State  # scheduled when due later, else pending
    scheduled_at: int | None
    expire_at: int | None
    lock_expires_at: int | None  # set when the job takes a unique lock


# The columns of `jobs` a planned job fills, in `job_row`'s order. Both backends insert these,
# then batch_id and created_at.
JOB_COLUMNS = (
    "id, queue, state, payload, priority, max_retries, retry_backoff, retry_base_delay_ms,"
    " retry_max_delay_ms, unique_key, unique_period_ms, tags, scheduled_at, expire_at, key"
)


def job_row(p: PlannedJob) -> tuple[object, ...]:
    """A planned job's values for `JOB_COLUMNS`."""
    return (
        p.id,
        p.job.queue,
        p.state.value,
        p.job.payload,
        p.job.priority,
        p.job.retry.max_retries,
        p.job.retry.backoff.value,
        p.job.retry.base_delay_ms,
        p.job.retry.max_delay_ms,
        p.job.unique_key,
        p.job.unique_period_ms,
        p.job.tags,
        p.scheduled_at,
        p.expire_at,
        p.job.key,
    )


def plan_inserts(jobs: Sequence[NewJob], now: int) -> list[PlannedJob]:
    """The rows for `jobs` inserted at `now` (a delay counts from `now`)."""
    planned = []
    for job in jobs:
        scheduled_at = job.scheduled_at
        if scheduled_at is None and job.delay_ms:
            scheduled_at = now + job.delay_ms
        state = (
            State.SCHEDULED if scheduled_at is not None and scheduled_at > now else State.PENDING
        )
        lock_expires_at = None
        if job.unique_key is not None and job.unique_period_ms is not None:
            lock_expires_at = now + job.unique_period_ms
        planned.append(
            PlannedJob(
                id=new_job_id(),
                job=job,
                state=state,
                scheduled_at=scheduled_at,
                expire_at=None if job.expire_after_ms is None else now + job.expire_after_ms,
                lock_expires_at=lock_expires_at,
            )
        )
    return planned


# A position of a batch request: the id of an existing job, or an index into the new jobs.
Slot = str | int


def plan_batch(
    jobs: Sequence[NewJob], holder: Callable[[str, str], str | None]
) -> tuple[list[Slot], list[NewJob]]:
    """Which jobs of a batch are new and what each request position answers.

    `holder(queue, unique_key)` names the unfinished job holding that unique lock, if any:
    such a position answers that job's id. The same key twice in one batch makes one job.
    """
    slots: list[Slot] = []
    fresh: list[NewJob] = []
    first_of_key: dict[tuple[str, str], int] = {}
    for job in jobs:
        if job.unique_key is not None:
            key = (job.queue, job.unique_key)
            if key in first_of_key:
                slots.append(first_of_key[key])
                continue
            existing = holder(job.queue, job.unique_key)
            if existing is not None:
                slots.append(existing)
                continue
            first_of_key[key] = len(fresh)
        slots.append(len(fresh))
        fresh.append(job)
    return slots, fresh
