"""Batch rows: counters as batch jobs finish, and the callback job when the last one does."""

from __future__ import annotations

import msgspec

from jobbie.store.params import BatchSpec, NewJob
from jobbie.store.postgres.effects import ensure_queue
from jobbie.store.postgres.inserts import insert_jobs
from jobbie.store.postgres.tx import Tx
from jobbie.store.rules import DEFAULT_RETRY
from jobbie.store.states import Priority


async def create(tx: Tx, batch_id: str, total: int, spec: BatchSpec) -> None:
    """Create the batch row; a batch with no new jobs is complete at once."""
    await tx.execute(
        "INSERT INTO batches (id, total, pending, callback_queue, callback_payload, created_at)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        (batch_id, total, total, spec.callback_queue, spec.callback_payload, tx.now),
    )
    if total == 0:
        await _complete(tx, batch_id)


async def count_finish(
    tx: Tx, *, seq: int, batch_id: str | None, counted: bool, succeeded: bool
) -> None:
    """Count a batch job's first finish (completed = succeeded; dead, cancelled = failed)."""
    if batch_id is None or counted:
        return
    # Guarded: a job is counted once even if two transactions finish it.
    cur = await tx.execute(
        "UPDATE jobs SET batch_counted = true WHERE seq = %s AND NOT batch_counted", (seq,)
    )
    if not cur.rowcount:
        return
    await _count(tx, batch_id, succeeded=int(succeeded), failed=int(not succeeded))


async def count_failures(tx: Tx, batch_id: str, n: int) -> None:
    """Count `n` batch jobs as failed at once (set-based cancel and delete)."""
    await _count(tx, batch_id, succeeded=0, failed=n)


async def _count(tx: Tx, batch_id: str, *, succeeded: int, failed: int) -> None:
    # The row lock this takes orders the batch's last finishes: one of them sees 0 pending.
    row = await tx.one(
        "UPDATE batches SET pending = pending - %s, succeeded = succeeded + %s,"
        " failed = failed + %s WHERE id = %s AND completed_at IS NULL RETURNING pending",
        (succeeded + failed, succeeded, failed, batch_id),
    )
    if row is not None and row["pending"] <= 0:
        await _complete(tx, batch_id)


async def _complete(tx: Tx, batch_id: str) -> None:
    """Mark the batch completed and enqueue its callback job, exactly once: the guarded
    update that sets `completed_at` is the once."""
    row = await tx.one(
        "UPDATE batches SET completed_at = %s WHERE id = %s AND completed_at IS NULL"
        " RETURNING total, succeeded, failed, callback_queue, callback_payload",
        (tx.now, batch_id),
    )
    if row is None or row["callback_queue"] is None:
        return
    payload = msgspec.json.encode(
        {
            "batch_id": batch_id,
            "total": row["total"],
            "succeeded": row["succeeded"],
            "failed": row["failed"],
            "callback_payload": msgspec.Raw(row["callback_payload"].encode()),
        }
    ).decode()
    await ensure_queue(tx, row["callback_queue"])
    [(callback_job_id, _)] = await insert_jobs(
        tx,
        [
            NewJob(
                queue=row["callback_queue"],
                payload=payload,
                priority=Priority.NORMAL.value,
                retry=DEFAULT_RETRY,
                tags=msgspec.json.encode({"batch_id": batch_id}).decode(),
            )
        ],
        batch_id=None,
    )
    await tx.execute(
        "UPDATE batches SET callback_job_id = %s WHERE id = %s", (callback_job_id, batch_id)
    )
