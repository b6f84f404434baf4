"""Writing planned jobs (see `jobbie.store.inserts`): enqueue, batch enqueue, batch callbacks
and cron all insert through here."""

from __future__ import annotations

from collections import Counter

from jobbie.store.inserts import plan_inserts
from jobbie.store.params import NewJob
from jobbie.store.sqlite.effects import bump_totals, record_events
from jobbie.store.sqlite.writer import Tx
from jobbie.store.states import EventType, State

_INSERT = (
    "INSERT INTO jobs (id, queue, state, payload, priority, max_retries, retry_backoff,"
    " retry_base_delay_ms, retry_max_delay_ms, unique_key, unique_period_ms, batch_id, tags,"
    " created_at, scheduled_at, expire_at, key)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def insert_jobs(tx: Tx, jobs: list[NewJob], *, batch_id: str | None) -> list[tuple[str, str]]:
    """Insert new jobs with their events, totals and unique locks; return (id, state) each."""
    now = tx.now
    planned = plan_inserts(jobs, now)
    rows = [
        (
            p.id,
            p.job.queue,
            p.state.value,
            p.job.payload,
            p.job.priority,
            p.job.retry.max_retries,
            p.job.retry.backoff.value,
            p.job.retry.base_delay_ms,
            p.job.retry.max_delay_ms,
            p.job.unique_key,
            p.job.unique_period_ms,
            batch_id,
            p.job.tags,
            now,
            p.scheduled_at,
            p.expire_at,
            p.job.key,
        )
        for p in planned
    ]
    created = [(p.id, p.state.value) for p in planned]
    locks = [
        (p.job.queue, p.job.unique_key, p.id, p.lock_expires_at)
        for p in planned
        if p.lock_expires_at is not None
    ]
    tx.wake.update(p.job.queue for p in planned if p.state is State.PENDING)
    tx.conn.executemany(_INSERT, rows)
    # Counted here, once per queue and state, rather than by a per-row trigger.
    tx.conn.executemany(
        "INSERT INTO queue_counts (queue, state, n) VALUES (?, ?, ?)"
        " ON CONFLICT (queue, state) DO UPDATE SET n = n + excluded.n",
        [(queue, state, n) for (queue, state), n in Counter((r[1], r[2]) for r in rows).items()],
    )
    if locks:
        tx.conn.executemany(
            "INSERT OR REPLACE INTO unique_locks (queue, unique_key, job_id, expires_at)"
            " VALUES (?, ?, ?, ?)",
            locks,
        )
    record_events(tx, EventType.ENQUEUED, ((row[0], row[1]) for row in rows))
    for queue, n in Counter(job.queue for job in jobs).items():
        bump_totals(tx, queue, enqueued=n)
    return created


def unique_holder(tx: Tx, queue: str, unique_key: str) -> tuple[str, str] | None:
    """(job_id, state) of the unfinished job holding the lock on (queue, unique_key)."""
    row = tx.execute(
        "SELECT j.id, j.state FROM unique_locks AS l JOIN jobs AS j ON j.id = l.job_id"
        " WHERE l.queue = ? AND l.unique_key = ? AND l.expires_at > ?"
        " AND j.state NOT IN ('completed', 'dead', 'cancelled')",
        (queue, unique_key, tx.now),
    ).fetchone()
    return None if row is None else (row[0], row[1])
