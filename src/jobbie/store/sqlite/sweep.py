"""Maintenance run by the scheduler, each step in small chunks so writers never stall."""

from __future__ import annotations

from jobbie.store.params import Retention
from jobbie.store.sqlite.effects import record_events
from jobbie.store.sqlite.writer import Tx
from jobbie.store.states import EventType


def promote_due(tx: Tx, limit: int) -> int:
    """Make up to `limit` due scheduled and retrying jobs pending (they keep their FIFO place)."""
    rows = tx.execute(
        "UPDATE jobs SET state = 'pending' WHERE seq IN ("
        " SELECT seq FROM jobs WHERE state IN ('scheduled', 'retrying') AND scheduled_at <= ?"
        " ORDER BY scheduled_at LIMIT ?) RETURNING id, queue",
        (tx.now, limit),
    ).fetchall()
    record_events(tx, EventType.PROMOTED, ((row[0], row[1]) for row in rows))
    tx.wake.update(row[1] for row in rows)
    return len(rows)


def finish_drains(tx: Tx) -> int:
    """A draining queue with no active job becomes paused."""
    cursor = tx.execute(
        "UPDATE queues SET draining = 0, paused = 1 WHERE draining = 1 AND COALESCE("
        " (SELECT n FROM queue_counts WHERE queue = queues.name AND state = 'active'), 0) = 0"
    )
    return cursor.rowcount


def prune_unique_locks(tx: Tx, limit: int) -> int:
    """Drop expired unique locks."""
    return tx.execute(
        "DELETE FROM unique_locks WHERE (queue, unique_key) IN (SELECT queue, unique_key"
        " FROM unique_locks"
        " WHERE expires_at <= ? LIMIT ?)",
        (tx.now, limit),
    ).rowcount


def prune_rate_limits(tx: Tx, limit: int) -> int:
    """Drop throttle records that have left their queue's window (or whose queue has none)."""
    return tx.execute(
        "DELETE FROM rate_limit_window WHERE id IN (SELECT r.id FROM rate_limit_window AS r"
        " LEFT JOIN queues AS q ON q.name = r.queue"
        " WHERE r.at <= ? - COALESCE(q.rate_window_ms, 0) LIMIT ?)",
        (tx.now, limit),
    ).rowcount


def prune_events(tx: Tx, retention: Retention, limit: int) -> int:
    """Drop events older than their retention."""
    return tx.execute(
        "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE at < ? ORDER BY at LIMIT ?)",
        (tx.now - retention.events_ms, limit),
    ).rowcount


def prune_finished_jobs(tx: Tx, retention: Retention, limit: int) -> int:
    """Delete finished jobs past retention (their errors go with them). Cancelled jobs are
    kept as long as completed ones."""
    deleted = 0
    for state, keep_ms in (
        ("completed", retention.completed_ms),
        ("cancelled", retention.completed_ms),
        ("dead", retention.dead_ms),
    ):
        deleted += tx.execute(
            "DELETE FROM jobs WHERE seq IN (SELECT seq FROM jobs WHERE state = ?"
            " AND completed_at < ? ORDER BY completed_at LIMIT ?)",
            (state, tx.now - keep_ms, limit),
        ).rowcount
    return deleted


def prune_workers(tx: Tx, retention: Retention) -> int:
    """Forget workers not seen within the retention."""
    return tx.execute(
        "DELETE FROM workers WHERE last_seen < ?", (tx.now - retention.workers_ms,)
    ).rowcount


# A queue row with nothing but its name: no jobs (finished ones count until pruned) and the
# default configuration.
_IDLE_QUEUE = (
    "paused = 0 AND draining = 0 AND max_concurrency IS NULL AND rate_limit IS NULL"
    " AND NOT EXISTS (SELECT 1 FROM queue_counts WHERE queue = queues.name AND n > 0)"
)


def prune_idle_queues(tx: Tx, retention: Retention, limit: int) -> int:
    """Forget up to `limit` queues idle (see _IDLE_QUEUE) for the queue retention; mark newly
    idle ones and unmark those in use again. An enqueue brings a forgotten queue back."""
    tx.execute(
        f"UPDATE queues SET idle_since = NULL WHERE idle_since IS NOT NULL AND NOT ({_IDLE_QUEUE})"
    )
    tx.execute(
        f"UPDATE queues SET idle_since = ? WHERE idle_since IS NULL AND {_IDLE_QUEUE}", (tx.now,)
    )
    names = [
        row[0]
        for row in tx.execute(
            f"SELECT name FROM queues WHERE idle_since <= ? AND {_IDLE_QUEUE} LIMIT ?",
            (tx.now - retention.queues_ms, limit),
        )
    ]
    for table, column in (
        ("queues", "name"),
        ("queue_stats", "queue"),
        ("queue_counts", "queue"),
        ("rate_limit_window", "queue"),
    ):
        tx.conn.executemany(f"DELETE FROM {table} WHERE {column} = ?", [(n,) for n in names])
    return len(names)
