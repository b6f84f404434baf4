"""Operator actions on queues and single jobs."""

from __future__ import annotations

from jobbie.errors import Conflict, NotFound
from jobbie.store.bulk import APPLIES_TO
from jobbie.store.sqlite import bulk, sweep
from jobbie.store.sqlite.effects import ensure_queue
from jobbie.store.sqlite.writer import Tx
from jobbie.store.states import WAITING, State


def set_paused(tx: Tx, queue: str, paused: bool) -> None:
    """Pause or resume (creating the queue's configuration if needed); resume ends a drain."""
    ensure_queue(tx, queue)
    tx.execute(
        "UPDATE queues SET paused = ?, draining = CASE WHEN ? THEN draining ELSE 0 END"
        " WHERE name = ?",
        (int(paused), int(paused), queue),
    )
    if not paused:
        tx.wake.add(queue)


def set_concurrency(tx: Tx, queue: str, maximum: int | None) -> None:
    ensure_queue(tx, queue)
    tx.execute("UPDATE queues SET max_concurrency = ? WHERE name = ?", (maximum, queue))
    tx.wake.add(queue)


def set_throttle(tx: Tx, queue: str, rate: int | None, window_ms: int | None) -> None:
    ensure_queue(tx, queue)
    tx.execute(
        "UPDATE queues SET rate_limit = ?, rate_window_ms = ? WHERE name = ?",
        (rate, window_ms, queue),
    )
    if rate is None:
        tx.execute("DELETE FROM rate_limit_window WHERE queue = ?", (queue,))
    tx.wake.add(queue)


def set_fairness(tx: Tx, queue: str, mode: str) -> None:
    ensure_queue(tx, queue)
    tx.execute("UPDATE queues SET fairness = ? WHERE name = ?", (mode, queue))
    tx.wake.add(queue)


def set_key_concurrency(tx: Tx, queue: str, maximum: int | None) -> None:
    ensure_queue(tx, queue)
    tx.execute("UPDATE queues SET key_concurrency = ? WHERE name = ?", (maximum, queue))
    tx.wake.add(queue)


def set_key_throttle(tx: Tx, queue: str, rate: int | None, window_ms: int | None) -> None:
    ensure_queue(tx, queue)
    tx.execute(
        "UPDATE queues SET key_rate_limit = ?, key_rate_window_ms = ? WHERE name = ?",
        (rate, window_ms, queue),
    )
    if rate is None:
        tx.execute("DELETE FROM key_rate_window WHERE queue = ?", (queue,))
    tx.wake.add(queue)


def cancel_job(tx: Tx, job_id: str) -> str:
    """Waiting jobs are cancelled at once; an active one is asked to stop (`cancelling`)."""
    seq, state = _job(tx, job_id)
    if state not in APPLIES_TO["cancel"]:
        raise Conflict(f"job {job_id} is {state.value} and cannot be cancelled")
    _changed(bulk.cancel(tx, [seq]), job_id)
    return State.CANCELLED.value if state in WAITING else "cancelling"


def _changed(count: int, job_id: str) -> None:
    """The guarded statements of `bulk` change nothing when the job left the state read
    just before: another writer won, so the request conflicts."""
    if count == 0:
        raise Conflict(f"job {job_id} changed while this request ran; try again")


def _job(tx: Tx, job_id: str) -> tuple[int, State]:
    row = tx.execute("SELECT seq, state FROM jobs WHERE id = ?", (job_id,)).fetchone()
    if row is None:
        raise NotFound(f"job {job_id} not found")
    return row[0], State(row[1])


def retry_job(tx: Tx, job_id: str) -> None:
    """A dead, cancelled or completed job runs again from attempt 0."""
    seq, state = _job(tx, job_id)
    if state not in APPLIES_TO["retry"]:
        raise Conflict(
            f"job {job_id} is {state.value}; only dead, cancelled or completed jobs can be retried"
        )
    _changed(bulk.retry(tx, [seq]), job_id)


def move_job(tx: Tx, job_id: str, queue: str) -> None:
    """Move a job in any state but active to another queue."""
    seq, state = _job(tx, job_id)
    if state is State.ACTIVE:
        raise Conflict(f"job {job_id} is active and cannot be moved")
    bulk.move(tx, [seq], queue, frozenset(State) - {State.ACTIVE})  # 0 when already there


def delete_job(tx: Tx, job_id: str) -> None:
    seq, _ = _job(tx, job_id)
    _changed(bulk.delete(tx, [seq]), job_id)


def _known_queue(tx: Tx, queue: str) -> None:
    if tx.execute("SELECT 1 FROM queues WHERE name = ?", (queue,)).fetchone() is None:
        raise NotFound(f"queue {queue} not found")


def clear_chunk(tx: Tx, queue: str, limit: int) -> int:
    """Delete up to `limit` waiting (pending, scheduled, retrying) jobs of the queue."""
    _known_queue(tx, queue)
    seqs = [
        r[0]
        for r in tx.execute(
            "SELECT seq FROM jobs WHERE queue = ? AND state IN ('pending', 'scheduled', 'retrying')"
            " LIMIT ?",
            (queue, limit),
        )
    ]
    return bulk.delete(tx, seqs) if seqs else 0


def drain(tx: Tx, queue: str) -> None:
    """Stop handing out jobs; the queue reads `draining` until its active jobs end, then paused."""
    _known_queue(tx, queue)
    tx.execute("UPDATE queues SET draining = 1, paused = 0 WHERE name = ?", (queue,))
    sweep.finish_drains(tx)


def delete_queue_chunk(tx: Tx, queue: str, limit: int) -> int:
    """Delete up to `limit` of the queue's jobs; when none are left, the queue itself."""
    _known_queue(tx, queue)
    seqs = [
        r[0] for r in tx.execute("SELECT seq FROM jobs WHERE queue = ? LIMIT ?", (queue, limit))
    ]
    if seqs:
        return bulk.delete(tx, seqs)
    for table, column in (
        ("queues", "name"),
        ("queue_stats", "queue"),
        ("queue_counts", "queue"),
        ("rate_limit_window", "queue"),
        ("unique_locks", "queue"),
    ):
        tx.execute(f"DELETE FROM {table} WHERE {column} = ?", (queue,))
    return 0
