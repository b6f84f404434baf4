"""Inserting jobs: single, unique and batch enqueue."""

from __future__ import annotations

from typing import cast

from jobbie.models import EnqueueBatchResponse, EnqueueResponse, StateName
from jobbie.store.ids import new_batch_id
from jobbie.store.inserts import job_row, plan_batch, plan_inserts
from jobbie.store.params import BatchSpec, NewJob
from jobbie.store.postgres import batches
from jobbie.store.postgres.effects import QUEUE_ROW, ensure_queue
from jobbie.store.postgres.inserts import INSERT_ONE, insert_jobs, take_unique_locks
from jobbie.store.postgres.tx import EVENTS, TOTALS, Tx
from jobbie.store.states import EventType, State

# A job without a unique key, as one statement (its own transaction): the queue's row, the
# job, the queue's totals and the `enqueued` event together. What `enqueue` does for such a
# job, in one round trip with no BEGIN or COMMIT to send (see `Database.write`'s `single`).
_ENQUEUE_PLAIN = f"""
WITH queue AS ({QUEUE_ROW}),
job AS ({INSERT_ONE}),
totals AS ({TOTALS})
{EVENTS} VALUES (%s, %s, %s, NULL, %s)
"""


def is_plain(job: NewJob) -> bool:
    """A job `enqueue_plain` can write: no unique lock to take or find."""
    return job.unique_key is None


async def enqueue_plain(tx: Tx, job: NewJob) -> EnqueueResponse:
    """Insert one job without a unique key in a single statement (`write(..., single=True)`)."""
    [p] = plan_inserts([job], tx.now)
    await tx.execute(
        _ENQUEUE_PLAIN,
        (
            *(job.queue, tx.now),
            *(*job_row(p), None, tx.now),
            *(job.queue, 1, 0, 0, 0),
            *(EventType.ENQUEUED.value, p.id, job.queue, tx.now),
        ),
    )
    tx.logged = True
    if p.state is State.PENDING:
        tx.wake.add(job.queue)
    return EnqueueResponse(job_id=p.id, status=p.state.value, unique_existing=False)


async def enqueue(tx: Tx, job: NewJob) -> EnqueueResponse:
    """Insert one job, or report the unfinished job that holds its unique lock."""
    await ensure_queue(tx, job.queue)
    held, taken = await take_unique_locks(tx, [job])
    if job.unique_key is not None and (existing := held.get((job.queue, job.unique_key))):
        return EnqueueResponse(
            job_id=existing[0], status=cast(StateName, existing[1]), unique_existing=True
        )
    [(job_id, state)] = await insert_jobs(tx, [job], batch_id=None, locked=taken)
    return EnqueueResponse(job_id=job_id, status=cast(StateName, state), unique_existing=False)


async def enqueue_batch(
    tx: Tx, jobs: list[NewJob], batch: BatchSpec | None
) -> EnqueueBatchResponse:
    """Insert every job atomically; a unique duplicate answers its existing job's id."""
    for queue in sorted({job.queue for job in jobs}):
        await ensure_queue(tx, queue)
    batch_id = new_batch_id() if batch is not None else None
    held, taken = await take_unique_locks(tx, jobs)

    def holder(queue: str, unique_key: str) -> str | None:
        existing = held.get((queue, unique_key))
        return None if existing is None else existing[0]

    slots, fresh = plan_batch(jobs, holder)
    inserted = await insert_jobs(tx, fresh, batch_id=batch_id, locked=taken)
    job_ids = [slot if isinstance(slot, str) else inserted[slot][0] for slot in slots]
    if batch is not None and batch_id is not None:
        await batches.create(tx, batch_id, len(inserted), batch)
    return EnqueueBatchResponse(job_ids=job_ids, batch_id=batch_id)
