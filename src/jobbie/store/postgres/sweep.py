"""Maintenance run by the leader's scheduler, each step in small chunks so workers never stall.

Only the leader runs these, but a leader that stalls past its lease may overlap with the next
one for a moment: every step locks the rows it takes with `FOR UPDATE SKIP LOCKED` and repeats
its condition in the outer statement, so two passes at once never change a row twice.
"""

from __future__ import annotations

from jobbie.store.params import Retention
from jobbie.store.postgres.effects import record_events
from jobbie.store.postgres.finish import guarded
from jobbie.store.postgres.tx import Tx
from jobbie.store.states import EventType


async def promote_due(tx: Tx, limit: int) -> int:
    """Make up to `limit` due scheduled and retrying jobs pending (they keep their FIFO place)."""
    rows = await tx.all(
        "WITH due AS MATERIALIZED ("
        " SELECT seq FROM jobs WHERE state IN ('scheduled', 'retrying') AND scheduled_at <= %s"
        " ORDER BY scheduled_at LIMIT %s FOR UPDATE SKIP LOCKED)"
        " UPDATE jobs SET state = 'pending' FROM due WHERE jobs.seq = due.seq"
        f" AND {guarded('jobs.state')} IN ('scheduled', 'retrying') RETURNING jobs.id, jobs.queue",
        (tx.now, limit),
    )
    record_events(tx, EventType.PROMOTED, ((row["id"], row["queue"]) for row in rows))
    tx.wake.update(row["queue"] for row in rows)
    return len(rows)


async def finish_drains(tx: Tx) -> int:
    """A draining queue with no active job becomes paused."""
    cur = await tx.execute(
        "UPDATE queues SET draining = false, paused = true WHERE draining AND COALESCE("
        " (SELECT sum(n) FROM queue_counts WHERE queue = queues.name AND state = 'active'), 0)"
        " = 0"
    )
    return int(cur.rowcount)


async def prune_unique_locks(tx: Tx, limit: int) -> int:
    """Drop expired unique locks."""
    cur = await tx.execute(
        "DELETE FROM unique_locks WHERE (queue, unique_key) IN (SELECT queue, unique_key"
        " FROM unique_locks WHERE expires_at <= %s LIMIT %s FOR UPDATE SKIP LOCKED)"
        " AND expires_at <= %s",
        (tx.now, limit, tx.now),
    )
    return int(cur.rowcount)


async def prune_rate_limits(tx: Tx, limit: int) -> int:
    """Drop throttle records that have left their queue's window (or whose queue has none)."""
    cur = await tx.execute(
        "DELETE FROM rate_limit_window WHERE id IN (SELECT r.id FROM rate_limit_window AS r"
        " LEFT JOIN queues AS q ON q.name = r.queue"
        " WHERE r.at <= %s - COALESCE(q.rate_window_ms, 0) LIMIT %s FOR UPDATE OF r SKIP LOCKED)",
        (tx.now, limit),
    )
    return int(cur.rowcount)


async def prune_events(tx: Tx, retention: Retention, limit: int) -> int:
    """Drop events older than their retention."""
    cur = await tx.execute(
        "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE at < %s ORDER BY at"
        " LIMIT %s FOR UPDATE SKIP LOCKED)",
        (tx.now - retention.events_ms, limit),
    )
    return int(cur.rowcount)


async def prune_finished_jobs(tx: Tx, retention: Retention, limit: int) -> int:
    """Delete finished jobs past retention (their errors go with them). Cancelled jobs are
    kept as long as completed ones."""
    deleted = 0
    for state, keep_ms in (
        ("completed", retention.completed_ms),
        ("cancelled", retention.completed_ms),
        ("dead", retention.dead_ms),
    ):
        cur = await tx.execute(
            "DELETE FROM jobs WHERE seq IN (SELECT seq FROM jobs WHERE state = %s"
            " AND completed_at < %s ORDER BY completed_at LIMIT %s FOR UPDATE SKIP LOCKED)"
            " AND state = %s",
            (state, tx.now - keep_ms, limit, state),
        )
        deleted += int(cur.rowcount)
    return deleted


async def prune_workers(tx: Tx, retention: Retention) -> int:
    """Forget workers not seen within the retention."""
    cur = await tx.execute(
        "DELETE FROM workers WHERE last_seen < %s", (tx.now - retention.workers_ms,)
    )
    return int(cur.rowcount)


# A queue row with nothing but its name: no jobs (finished ones count until pruned) and the
# default configuration.
_IDLE_QUEUE = (
    "NOT paused AND NOT draining AND max_concurrency IS NULL AND rate_limit IS NULL"
    " AND NOT EXISTS (SELECT 1 FROM queue_counts WHERE queue = queues.name"
    " GROUP BY state HAVING sum(n) > 0)"
)


async def prune_idle_queues(tx: Tx, retention: Retention, limit: int) -> int:
    """Forget up to `limit` queues idle (see _IDLE_QUEUE) for the queue retention; mark newly
    idle ones and unmark those in use again. An enqueue brings a forgotten queue back."""
    await tx.execute(
        f"UPDATE queues SET idle_since = NULL WHERE idle_since IS NOT NULL AND NOT ({_IDLE_QUEUE})"
    )
    await tx.execute(
        f"UPDATE queues SET idle_since = %s WHERE idle_since IS NULL AND {_IDLE_QUEUE}",
        (tx.now,),
    )
    # Locked, so an enqueue that creates a job in the queue meanwhile waits for the row
    # (ensure_queue) and then finds it gone and creates it again.
    rows = await tx.all(
        f"SELECT name FROM queues WHERE idle_since <= %s AND {_IDLE_QUEUE}"
        " ORDER BY name LIMIT %s FOR UPDATE SKIP LOCKED",
        (tx.now - retention.queues_ms, limit),
    )
    names = [row["name"] for row in rows]
    if names:
        for table, column in (
            ("queues", "name"),
            ("queue_stats", "queue"),
            ("queue_counts", "queue"),
            ("failure_counts", "queue"),
            ("rate_limit_window", "queue"),
        ):
            await tx.execute(f"DELETE FROM {table} WHERE {column} = ANY(%s)", (names,))
    return len(names)


async def compact_failure_counts(tx: Tx, limit: int) -> int:
    """Delete up to `limit` cells of `failure_counts` (signature, state, queue) whose slots sum
    to 0: no job is counted there any more, but a job counted in one slot and uncounted in
    another leaves rows behind, and signatures come and go. Only rows locked here are deleted,
    and only a locked set that sums to 0, so a concurrent count is never lost."""
    rows = await tx.all(
        "SELECT signature, state, queue, slot, n FROM failure_counts"
        " WHERE (signature, state, queue) IN (SELECT signature, state, queue"
        "  FROM failure_counts GROUP BY signature, state, queue HAVING sum(n) = 0 LIMIT %s)"
        " ORDER BY signature, state, queue, slot FOR UPDATE SKIP LOCKED",
        (limit,),
    )
    sums: dict[tuple[str, str, str], int] = {}
    for r in rows:
        cell = (r["signature"], r["state"], r["queue"])
        sums[cell] = sums.get(cell, 0) + r["n"]
    gone = [r for r in rows if sums[(r["signature"], r["state"], r["queue"])] == 0]
    if not gone:
        return 0
    cur = await tx.execute(
        "DELETE FROM failure_counts WHERE (signature, state, queue, slot) IN"
        " (SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::smallint[]))",
        (
            [r["signature"] for r in gone],
            [r["state"] for r in gone],
            [r["queue"] for r in gone],
            [r["slot"] for r in gone],
        ),
    )
    return int(cur.rowcount)
