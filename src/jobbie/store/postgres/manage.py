"""Operator actions on queues and single jobs."""

from __future__ import annotations

from jobbie.errors import Conflict, NotFound
from jobbie.store.bulk import APPLIES_TO
from jobbie.store.postgres import bulk, sweep
from jobbie.store.postgres.effects import ensure_queue
from jobbie.store.postgres.tx import Tx
from jobbie.store.states import WAITING, State


async def set_paused(tx: Tx, queue: str, paused: bool) -> None:
    """Pause or resume (creating the queue's configuration if needed); resume ends a drain."""
    await ensure_queue(tx, queue)
    await tx.execute(
        "UPDATE queues SET paused = %s, draining = CASE WHEN %s THEN draining ELSE false END"
        " WHERE name = %s",
        (paused, paused, queue),
    )
    if not paused:
        tx.wake.add(queue)


async def set_concurrency(tx: Tx, queue: str, maximum: int | None) -> None:
    await ensure_queue(tx, queue)
    await tx.execute("UPDATE queues SET max_concurrency = %s WHERE name = %s", (maximum, queue))
    tx.wake.add(queue)


async def set_throttle(tx: Tx, queue: str, rate: int | None, window_ms: int | None) -> None:
    await ensure_queue(tx, queue)
    await tx.execute(
        "UPDATE queues SET rate_limit = %s, rate_window_ms = %s WHERE name = %s",
        (rate, window_ms, queue),
    )
    if rate is None:
        await tx.execute("DELETE FROM rate_limit_window WHERE queue = %s", (queue,))
    tx.wake.add(queue)


async def set_fairness(tx: Tx, queue: str, mode: str) -> None:
    await ensure_queue(tx, queue)
    await tx.execute("UPDATE queues SET fairness = %s WHERE name = %s", (mode, queue))
    tx.wake.add(queue)


async def set_key_concurrency(tx: Tx, queue: str, maximum: int | None) -> None:
    await ensure_queue(tx, queue)
    await tx.execute("UPDATE queues SET key_concurrency = %s WHERE name = %s", (maximum, queue))
    tx.wake.add(queue)


async def set_key_throttle(tx: Tx, queue: str, rate: int | None, window_ms: int | None) -> None:
    await ensure_queue(tx, queue)
    await tx.execute(
        "UPDATE queues SET key_rate_limit = %s, key_rate_window_ms = %s WHERE name = %s",
        (rate, window_ms, queue),
    )
    if rate is None:
        await tx.execute("DELETE FROM key_rate_window WHERE queue = %s", (queue,))
    tx.wake.add(queue)


async def cancel_job(tx: Tx, job_id: str) -> str:
    """Waiting jobs are cancelled at once; an active one is asked to stop (`cancelling`)."""
    seq, state = await _job(tx, job_id)
    if state not in APPLIES_TO["cancel"]:
        raise Conflict(f"job {job_id} is {state.value} and cannot be cancelled")
    _changed(await bulk.cancel(tx, [seq]), job_id)
    return State.CANCELLED.value if state in WAITING else "cancelling"


def _changed(count: int, job_id: str) -> None:
    """The guarded statements of `bulk` change nothing when the job left the state read
    just before: another transaction won, so the request conflicts."""
    if count == 0:
        raise Conflict(f"job {job_id} changed while this request ran; try again")


async def _job(tx: Tx, job_id: str) -> tuple[int, State]:
    """The job's seq and state, its row locked until COMMIT so that the state holds."""
    row = await tx.one("SELECT seq, state FROM jobs WHERE id = %s FOR UPDATE", (job_id,))
    if row is None:
        raise NotFound(f"job {job_id} not found")
    return row["seq"], State(row["state"])


async def retry_job(tx: Tx, job_id: str) -> None:
    """A dead, cancelled or completed job runs again from attempt 0."""
    seq, state = await _job(tx, job_id)
    if state not in APPLIES_TO["retry"]:
        raise Conflict(
            f"job {job_id} is {state.value}; only dead, cancelled or completed jobs can be retried"
        )
    _changed(await bulk.retry(tx, [seq]), job_id)


async def move_job(tx: Tx, job_id: str, queue: str) -> None:
    """Move a job in any state but active to another queue."""
    seq, state = await _job(tx, job_id)
    if state is State.ACTIVE:
        raise Conflict(f"job {job_id} is active and cannot be moved")
    await bulk.move(tx, [seq], queue, frozenset(State) - {State.ACTIVE})  # 0 when already there


async def delete_job(tx: Tx, job_id: str) -> None:
    seq, _ = await _job(tx, job_id)
    _changed(await bulk.delete(tx, [seq]), job_id)


async def _known_queue(tx: Tx, queue: str) -> None:
    if await tx.one("SELECT 1 FROM queues WHERE name = %s", (queue,)) is None:
        raise NotFound(f"queue {queue} not found")


async def clear_chunk(tx: Tx, queue: str, limit: int) -> int:
    """Delete up to `limit` waiting (pending, scheduled, retrying) jobs of the queue."""
    await _known_queue(tx, queue)
    # Locked here, so that a job a claim takes meanwhile is left out (FOR UPDATE re-checks
    # the state of a row it waited for), and `bulk.delete` deletes only waiting jobs.
    rows = await tx.all(
        "SELECT seq FROM jobs WHERE queue = %s AND state IN ('pending', 'scheduled', 'retrying')"
        " LIMIT %s FOR UPDATE",
        (queue, limit),
    )
    return await bulk.delete(tx, [r["seq"] for r in rows]) if rows else 0


async def drain(tx: Tx, queue: str) -> None:
    """Stop handing out jobs; the queue reads `draining` until its active jobs end, then paused."""
    await _known_queue(tx, queue)
    await tx.execute("UPDATE queues SET draining = true, paused = false WHERE name = %s", (queue,))
    await sweep.finish_drains(tx)


async def delete_queue_chunk(tx: Tx, queue: str, limit: int) -> int:
    """Delete up to `limit` of the queue's jobs; when none are left, the queue itself."""
    await _known_queue(tx, queue)
    rows = await tx.all("SELECT seq FROM jobs WHERE queue = %s LIMIT %s", (queue, limit))
    if rows:
        return await bulk.delete(tx, [r["seq"] for r in rows])
    for table, column in (
        ("queues", "name"),
        ("queue_stats", "queue"),
        ("queue_counts", "queue"),
        ("failure_counts", "queue"),
        ("rate_limit_window", "queue"),
        ("unique_locks", "queue"),
    ):
        await tx.execute(f"DELETE FROM {table} WHERE {column} = %s", (queue,))
    return 0
