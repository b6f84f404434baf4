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
