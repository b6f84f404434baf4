"""Inserting jobs: single, unique and batch enqueue."""

from __future__ import annotations

from typing import cast

from jobbie.models import EnqueueBatchResponse, EnqueueResponse, StateName
from jobbie.store.ids import new_batch_id
from jobbie.store.inserts import plan_batch
from jobbie.store.params import BatchSpec, NewJob
from jobbie.store.sqlite import batches
from jobbie.store.sqlite.effects import ensure_queue
from jobbie.store.sqlite.inserts import insert_jobs, unique_holder
from jobbie.store.sqlite.writer import Tx


def enqueue(tx: Tx, job: NewJob) -> EnqueueResponse:
    """Insert one job, or report the unfinished job that holds its unique lock."""
    ensure_queue(tx, job.queue)
    if job.unique_key is not None:
        existing = unique_holder(tx, job.queue, job.unique_key)
        if existing is not None:
            return EnqueueResponse(
                job_id=existing[0], status=cast(StateName, existing[1]), unique_existing=True
            )
    [(job_id, state)] = insert_jobs(tx, [job], batch_id=None)
    return EnqueueResponse(job_id=job_id, status=cast(StateName, state), unique_existing=False)


def enqueue_batch(tx: Tx, jobs: list[NewJob], batch: BatchSpec | None) -> EnqueueBatchResponse:
    """Insert every job atomically; a unique duplicate answers its existing job's id."""
    for queue in {job.queue for job in jobs}:
        ensure_queue(tx, queue)
    batch_id = new_batch_id() if batch is not None else None

    def holder(queue: str, unique_key: str) -> str | None:
        existing = unique_holder(tx, queue, unique_key)
        return None if existing is None else existing[0]

    slots, fresh = plan_batch(jobs, holder)
    inserted = insert_jobs(tx, fresh, batch_id=batch_id)
    job_ids = [slot if isinstance(slot, str) else inserted[slot][0] for slot in slots]
    if batch is not None and batch_id is not None:
        batches.create(tx, batch_id, len(inserted), batch)
    return EnqueueBatchResponse(job_ids=job_ids, batch_id=batch_id)
