"""Operator actions on queues and single jobs."""

from __future__ import annotations

from jobbie.errors import Conflict, NotFound
from jobbie.store.sqlite.effects import ensure_queue
from jobbie.store.sqlite.finish import job_columns, settle
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


def cancel_job(tx: Tx, job_id: str) -> str:
    """Waiting jobs are cancelled at once; an active one is asked to stop (`cancelling`)."""
    row = tx.execute(f"SELECT {job_columns()} FROM jobs WHERE id = ?", (job_id,)).fetchone()
    if row is None:
        raise NotFound(f"job {job_id} not found")
    state = State(row["state"])
    if state in WAITING:
        tx.execute(
            "UPDATE jobs SET state = 'cancelled', completed_at = ? WHERE seq = ?",
            (tx.now, row["seq"]),
        )
        settle(tx, row, State.CANCELLED)
        return State.CANCELLED.value
    if state is State.ACTIVE:
        tx.execute("UPDATE jobs SET cancel_requested = 1 WHERE seq = ?", (row["seq"],))
        return "cancelling"
    raise Conflict(f"job {job_id} is {state.value} and cannot be cancelled")
