"""Batch rows: counters as batch jobs finish, and the callback job when the last one does."""

from __future__ import annotations

import msgspec

from jobbie.store.params import BatchSpec, NewJob
from jobbie.store.rules import DEFAULT_RETRY
from jobbie.store.sqlite.effects import ensure_queue
from jobbie.store.sqlite.inserts import insert_jobs
from jobbie.store.sqlite.writer import Tx
from jobbie.store.states import Priority


def create(tx: Tx, batch_id: str, total: int, spec: BatchSpec) -> None:
    """Create the batch row; a batch with no new jobs is complete at once."""
    tx.execute(
        "INSERT INTO batches (id, total, pending, callback_queue, callback_payload, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (batch_id, total, total, spec.callback_queue, spec.callback_payload, tx.now),
    )
    if total == 0:
        _complete(tx, batch_id)


def count_finish(tx: Tx, *, seq: int, batch_id: str | None, counted: bool, succeeded: bool) -> None:
    """Count a batch job's first finish (completed = succeeded; dead, cancelled = failed)."""
    if batch_id is None or counted:
        return
    # Guarded: a job is counted once even if two writers finish it.
    if not tx.execute(
        "UPDATE jobs SET batch_counted = 1 WHERE seq = ? AND batch_counted = 0", (seq,)
    ).rowcount:
        return
    _count(tx, batch_id, succeeded=int(succeeded), failed=int(not succeeded))


def count_failures(tx: Tx, batch_id: str, n: int) -> None:
    """Count `n` batch jobs as failed at once (set-based cancel and delete)."""
    _count(tx, batch_id, succeeded=0, failed=n)


def _count(tx: Tx, batch_id: str, *, succeeded: int, failed: int) -> None:
    row = tx.execute(
        "UPDATE batches SET pending = pending - ?, succeeded = succeeded + ?,"
        " failed = failed + ? WHERE id = ? AND completed_at IS NULL RETURNING pending",
        (succeeded + failed, succeeded, failed, batch_id),
    ).fetchone()
    if row is not None and row[0] <= 0:
        _complete(tx, batch_id)


def _complete(tx: Tx, batch_id: str) -> None:
    """Mark the batch completed and enqueue its callback job, exactly once: the guarded
    update that sets `completed_at` is the once."""
    row = tx.execute(
        "UPDATE batches SET completed_at = ? WHERE id = ? AND completed_at IS NULL"
        " RETURNING total, succeeded, failed, callback_queue, callback_payload",
        (tx.now, batch_id),
    ).fetchone()
    if row is None:
        return
    total, succeeded, failed, callback_queue, callback_payload = row
    callback_job_id = None
    if callback_queue is not None:
        payload = msgspec.json.encode(
            {
                "batch_id": batch_id,
                "total": total,
                "succeeded": succeeded,
                "failed": failed,
                "callback_payload": msgspec.Raw(callback_payload.encode()),
            }
        ).decode()
        ensure_queue(tx, callback_queue)
        [(callback_job_id, _)] = insert_jobs(
            tx,
            [
                NewJob(
                    queue=callback_queue,
                    payload=payload,
                    priority=Priority.NORMAL.value,
                    retry=DEFAULT_RETRY,
                    tags=msgspec.json.encode({"batch_id": batch_id}).decode(),
                )
            ],
            batch_id=None,
        )
        tx.execute(
            "UPDATE batches SET callback_job_id = ? WHERE id = ?", (callback_job_id, batch_id)
        )
